"""The content store on the node's libp2p host: DHT, block exchange, replication and the store's HTTP routes."""
