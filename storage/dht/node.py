"""A DHT participant as pure logic: answers requests and prepares lookups, announcements and table upkeep.

The async shell owns the streams: for every inbound request it calls `handle` and writes the response back
(then pings the peer `handle` suggests, if any); for outbound work it drives a `Lookup` from `start_lookup`,
sending the requests the lookup asks for and feeding the answers back, then sends the ADD_PROVIDER messages
`announcements` returns. `due_announcements` tells it which keys the republish schedule says to announce.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.address import CID
from storage.dht.keyspace import Contact, key_of, provider_key
from storage.dht.lookup import Lookup, LookupKind
from storage.dht.messages import Ack, AddProvider, FindNode, GetProviders, Nodes, Ping, Request, Response
from storage.dht.providers import ProviderStore, RepublishSchedule
from storage.dht.routing import K, RoutingTable
from storage.errors import ProtocolError


@dataclass(frozen=True, slots=True)
class Handled:
    response: Response
    ping: Contact | None  # a full bucket's oldest peer to ping; report with table.ping_answered / peer_failed


class DhtNode:
    def __init__(
        self,
        local: Contact,
        k: int = K,
        providers: ProviderStore | None = None,
        schedule: RepublishSchedule | None = None,
    ) -> None:
        self.local = local
        self.k = k
        self.table = RoutingTable(local, k)
        self.providers = providers or ProviderStore()
        self.schedule = schedule or RepublishSchedule()

    def handle(self, sender: Contact, request: Request, now: float) -> Handled:
        """Answer one request from `sender` (whose peer ID the secure channel authenticated)."""
        ping = self.table.observe(sender, now)
        response: Response
        match request:
            case FindNode(target):
                response = Nodes(tuple(self.table.closest(target, self.k, exclude=[sender.peer_id])))
            case GetProviders(key):
                closer = self.table.closest(key_of(key), self.k, exclude=[sender.peer_id])
                response = Nodes(tuple(closer), tuple(self.providers.get(key, now)))
            case AddProvider(key, provider):
                # As in libp2p: a peer may only announce itself, or anyone could point a CID at a victim.
                if provider.peer_id != sender.peer_id:
                    raise ProtocolError("ADD_PROVIDER for a peer other than the sender")
                self.providers.add(key, provider, now)
                response = Ack()
            case Ping():
                response = Ack()
        return Handled(response, ping)

    def start_lookup(self, target: int, kind: LookupKind = LookupKind.FIND_NODE, want_providers: int = K) -> Lookup:
        seeds = self.table.closest(target, self.k)
        return Lookup(target, seeds, kind=kind, local_id=self.local.peer_id, k=self.k, want_providers=want_providers)

    def find_providers(self, cid: CID, now: float, want: int = K) -> tuple[list[Contact], Lookup]:
        """Providers known locally (ourselves included) and a lookup for more, to drive if those are too few."""
        key = provider_key(cid)
        return self.providers.get(key, now, limit=want), self.start_lookup(key_of(key), LookupKind.GET_PROVIDERS, want)

    def provide(self, cid: CID, now: float) -> Lookup:
        """Start providing `cid`: record ourselves, schedule republishing, and return the lookup whose closest
        peers must receive ADD_PROVIDER (see `announcements`)."""
        key = provider_key(cid)
        self.providers.add(key, self.local, now)
        self.schedule.provide(key, now)
        self.schedule.due(now)  # this first announcement is the one being made now
        return self.start_lookup(key_of(key))

    def stop_providing(self, cid: CID) -> None:
        self.schedule.stop(provider_key(cid))

    def announcements(self, key: bytes, finished: Lookup) -> list[tuple[Contact, AddProvider]]:
        """ADD_PROVIDER messages for the k closest peers a finished FIND_NODE lookup found."""
        message = AddProvider(key, self.local)
        return [(peer, message) for peer in finished.closest(self.k)]

    def due_announcements(self, now: float) -> list[tuple[bytes, Lookup]]:
        """Keys whose republish time has come, each with the lookup to run before announcing it again."""
        due = self.schedule.due(now)
        for key in due:
            self.providers.add(key, self.local, now)  # keep our own record fresh too
        return [(key, self.start_lookup(key_of(key))) for key in due]

    def expire(self, now: float) -> int:
        """Drop expired provider records (call periodically)."""
        return self.providers.expire(now)
