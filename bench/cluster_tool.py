"""Helpers of bench/cluster.sh: who owns which wallet (cluster/view.cpp's
rendezvous hashing, the same as tests/integration/test_cluster.py), wrk
scripts for transfers between chosen pairs, and the failover probe.

  cluster_tool.py lua same|cross NODES USER_IDS TOKENS OUT.lua
      transfers whose source the first of NODES owns, to a wallet it owns
      too (same) or another node owns (cross); sources and receivers are
      disjoint sets of equal size in both
  cluster_tool.py owned NODE NODES USER_IDS TOKENS
      prints the tokens of the users whose wallet NODE owns
  cluster_tool.py failover PORT TOKENS_FILE PID
      kill -9 PID, then asks GET /api/v1/wallet on 127.0.0.1:PORT for each
      token until each answers 200 (at most 30 s); prints "seconds_to_all
      seconds_to_first answered total"
"""
import http.client
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import rendezvous  # noqa: E402  (cluster/view.cpp's placement)


def owner(nodes, uid):
    return rendezvous.owner(nodes, "wallet", uid)


def load(ids_path, tokens_path):
    ids = open(ids_path).read().split()
    tokens = open(tokens_path).read().split()
    return list(zip(ids, tokens))


def lua(kind, nodes, users, out):
    home = nodes[0]
    mine = [u for u in users if owner(nodes, u[0]) == home]
    theirs = [u for u in users if owner(nodes, u[0]) != home]
    # Sources and receivers are two sets that do not meet in both cases
    # (a wallet is only ever one or the other): the same contention.
    n = min(len(mine) // 2, len(theirs))
    src = mine[:n]
    dst = mine[n:2 * n] if kind == "same" else theirs[:n]
    rnd = random.Random(7919)
    with open(out, "w") as f:
        f.write("local reqs = {}\ninit = function(args)\n")
        for _ in range(20000):
            s, d = rnd.choice(src), rnd.choice(dst)
            while d[0] == s[0]:
                d = rnd.choice(dst)
            body = '{"to_user_id":"%s","amount":%d}' % (d[0], rnd.randint(1, 100))
            f.write('  reqs[#reqs + 1] = wrk.format("POST", "/api/v1/wallet/transfer", '
                    '{["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"}, '
                    "'%s')\n" % (s[1], body))
        f.write("end\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n"
                "  return reqs[i]\nend\n")
    print(len(src), len(dst))


def wallet_ok(port, token):
    try:
        # Short: a request sent just before the node noticed the death
        # waits out its timeout, which would count as failover time.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=0.25)
        c.request("GET", "/api/v1/wallet", headers={"Authorization": "Bearer " + token})
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def failover(port, tokens, pid):
    left = set(tokens)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    first = None
    while left and time.monotonic() - t0 < 30:
        for t in list(left):
            if wallet_ok(port, t):
                left.discard(t)
                if first is None:
                    first = time.monotonic() - t0
        time.sleep(0.01)
    print("%.3f %.3f %d %d" % (time.monotonic() - t0, first or -1, len(tokens) - len(left),
                               len(tokens)))


def main():
    cmd = sys.argv[1]
    if cmd == "lua":
        lua(sys.argv[2], sys.argv[3].split(","), load(sys.argv[4], sys.argv[5]), sys.argv[6])
    elif cmd == "owned":
        nodes = sys.argv[3].split(",")
        for uid, token in load(sys.argv[4], sys.argv[5]):
            if owner(nodes, uid) == sys.argv[2]:
                print(token)
    elif cmd == "failover":
        tokens = open(sys.argv[3]).read().split()
        failover(int(sys.argv[2]), tokens, int(sys.argv[4]))


if __name__ == "__main__":
    main()
