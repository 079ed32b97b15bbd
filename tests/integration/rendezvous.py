"""cluster/view.cpp's rendezvous placement, for tests and benches that must
know which node owns an entity: FNV-1a over the node id, then 0x1f and
`type:id`, mixed by splitmix64's finalizer; the top score owns the key."""

M = (1 << 64) - 1


def _fnv(h, data):
    for c in data:
        h ^= c
        h = (h * 1099511628211) & M
    return h


def score(node, key):
    h = _fnv(14695981039346656037, node.encode())
    h = _fnv(h ^ 0x1F, key.encode())
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & M
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & M
    h ^= h >> 31
    return h


def owner(nodes, kind, entity_id):
    """The id of the node of `nodes` that owns `kind:entity_id`."""
    key = "%s:%s" % (kind, entity_id)
    return max(sorted(nodes), key=lambda n: score(n, key))
