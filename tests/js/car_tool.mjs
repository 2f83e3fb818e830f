// An independent CAR v1 reader and writer for the Python tests (tests/storage/test_car_interop.py), built on
// @ipld/car, @ipld/dag-pb, ipfs-unixfs and multiformats — the JavaScript IPLD stack, not ehrnet's code.
//
//   node car_tool.mjs verify FILE.car          -> {"roots": [...], "blocks": [...]} after checking every block's
//                                               sha2-256 against its CID (exit 1 on any mismatch)
//   node car_tool.mjs write OUT.car INPUT      -> prints the root CID of INPUT imported as kubo does with
//                                               --cid-version 1 --raw-leaves --chunker size-262144 (one level)
import { CarBufferWriter, CarReader } from '@ipld/car'
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { readFile, writeFile } from 'node:fs/promises'

const CHUNK = 262144

async function verify (path) {
  const reader = await CarReader.fromBytes(await readFile(path))
  const blocks = []
  for await (const { cid, bytes } of reader.blocks()) {
    const digest = await sha256.digest(bytes)
    if (cid.multihash.code !== sha256.code || !equal(digest.digest, cid.multihash.digest)) {
      console.error(`block ${cid} does not hash to its CID`)
      process.exit(1)
    }
    blocks.push(cid.toString())
  }
  const roots = (await reader.getRoots()).map((cid) => cid.toString())
  console.log(JSON.stringify({ roots, blocks }))
}

function equal (a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i])
}

async function write (out, input) {
  const data = await readFile(input)
  const leaves = []
  for (let offset = 0; offset < data.length || leaves.length === 0; offset += CHUNK) {
    const bytes = data.subarray(offset, offset + CHUNK)
    leaves.push({ cid: CID.create(1, raw.code, await sha256.digest(bytes)), bytes })
  }
  let root = leaves[0]
  const blocks = [...leaves]
  if (leaves.length > 1) {
    if (leaves.length > 174) throw new Error('one level only: at most 174 chunks')
    const file = new UnixFS({ type: 'file', blockSizes: leaves.map((leaf) => BigInt(leaf.bytes.length)) })
    const node = dagPB.prepare({
      Data: file.marshal(),
      Links: leaves.map((leaf) => ({ Hash: leaf.cid, Name: '', Tsize: leaf.bytes.length }))
    })
    const bytes = dagPB.encode(node)
    root = { cid: CID.create(1, dagPB.code, await sha256.digest(bytes)), bytes }
    blocks.unshift(root)
  }
  const size = CarBufferWriter.estimateHeaderLength(1) +
    blocks.reduce((total, block) => total + CarBufferWriter.blockLength(block), 0)
  const writer = CarBufferWriter.createWriter(new ArrayBuffer(size), { roots: [root.cid] })
  for (const block of blocks) writer.write(block)
  await writeFile(out, writer.close({ resize: true }))
  console.log(root.cid.toString())
}

const [command, ...args] = process.argv.slice(2)
if (command === 'verify') await verify(args[0])
else if (command === 'write') await write(args[0], args[1])
else {
  console.error('usage: car_tool.mjs verify FILE.car | write OUT.car INPUT')
  process.exit(2)
}
