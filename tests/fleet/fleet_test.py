#!/usr/bin/env python3
"""Issue 16's fleet, built on this machine with network namespaces and veth pairs.

    ugf-sw:  a bridge joining the four hosts below on 10.250.0.0/24
    ugf-lb:  HAProxy (Debian's), TCP mode, send-proxy-v2, at 10.250.0.1:1935; it checks
             each node's /readyz, so a draining node gets no new publishers
    ugf-a:   uringestd node A at 10.250.0.2 (RTMP 1935, HTTP API 8080), ring ugfa<pid>
    ugf-b:   uringestd node B at 10.250.0.3, ring ugfb<pid>
    ugf-pub: the publishers at 10.250.0.4: uringest-load and two real ffmpeg

The rings are shared memory, which namespaces of the network do not separate: the
verifier of uringest-load reads both nodes' rings at once and counts every frame once.

What it checks:
  1. Each node sees the publishers' own address (10.250.0.4), in /v1/streams and its
     log, never HAProxy's; a host that is not a trusted proxy is refused, and the
     balancer's health checks cost no log line at info.
  2. Node A is drained (POST /v1/drain): every uringest-load publisher on it (they
     announce Enhanced RTMP's Reconnect) moves to B within one GOP (2 s) and a second of
     reconnecting, and the verifier finds no frame lost or duplicated across both rings.
     The ffmpeg publishers (no Reconnect) stream on until --drain-timeout, are closed,
     and reach B through HAProxy when restarted. A exits once empty. Its /readyz is 503
     and its /metrics say so meanwhile.
  3. A restarted, B is killed with SIGKILL: the publishers that were on B reconnect
     through HAProxy to A, and the verifier's loss is exact: each publisher's frames are
     delivered + lost = sent, losses only on the publishers B held, none duplicated.

Exit status 77 (ctest's skip) where it can't run: not root.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
NET = "10.250.0"
LB, NODE_A, NODE_B, PUB = f"{NET}.1", f"{NET}.2", f"{NET}.3", f"{NET}.4"
TOKEN = "fleet-test-token"
GOP_S = 2.0  # uringest-load's synthetic streams
LOAD_PUBLISHERS = 50


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(*argv, check_rc=True, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check_rc and result.returncode != 0:
        raise Failure(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


class Network:
    """The namespaces, the bridge and the veth pairs; removed by close()."""

    HOSTS = {"lb": LB, "a": NODE_A, "b": NODE_B, "pub": PUB}

    def __init__(self):
        self.tag = f"{os.getpid() % 100000}"
        self.names = []

    def ns(self, host):
        return f"ugf-{host}-{self.tag}"

    def create(self):
        sw = self.ns("sw")
        run("ip", "netns", "add", sw)
        self.names.append(sw)
        run("ip", "netns", "exec", sw, "ip", "link", "add", "br0", "type", "bridge")
        run("ip", "netns", "exec", sw, "ip", "link", "set", "br0", "up")
        for i, (host, address) in enumerate(self.HOSTS.items()):
            ns = self.ns(host)
            run("ip", "netns", "add", ns)
            self.names.append(ns)
            inner, outer = f"ugf{self.tag}h{i}", f"ugf{self.tag}s{i}"
            run("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            run("ip", "link", "set", inner, "netns", ns)
            run("ip", "link", "set", outer, "netns", sw)
            run("ip", "netns", "exec", sw, "ip", "link", "set", outer, "master", "br0", "up")
            run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", inner)
            run("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")

    def close(self):
        for ns in reversed(self.names):
            run("ip", "netns", "del", ns, check_rc=False)


class Processes:
    """Every process the test starts, killed at the end."""

    def __init__(self, work):
        self.work = work
        self.running = []

    def start(self, name, argv, stdout=None):
        log_path = os.path.join(self.work, f"{name}.log")
        with open(log_path, "ab") as log_file:
            p = subprocess.Popen(argv, stdout=stdout if stdout is not None else log_file,
                                 stderr=log_file, stdin=subprocess.DEVNULL)
        p.log_path = log_path
        p.name = name
        self.running.append(p)
        return p

    def close(self):
        for p in self.running:
            if p.poll() is None:
                p.kill()
                p.wait()


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class Fleet:
    def __init__(self, args, work):
        self.bin = args.bin
        self.work = work
        self.net = Network()
        self.procs = Processes(work)
        self.rings = {"a": f"ugfa{os.getpid()}", "b": f"ugfb{os.getpid()}"}
        self.nodes = {}
        self.ffmpeg = {}
        self.starts = {"a": 0, "b": 0}

    def exec_in(self, host, *argv):
        return ["ip", "netns", "exec", self.net.ns(host), *argv]

    # ---- the nodes ----

    def start_node(self, host):
        address = Network.HOSTS[host]
        self.starts[host] += 1
        node = self.procs.start(
            f"node-{host}-{self.starts[host]}",
            self.exec_in(host, os.path.join(self.bin, "uringestd"),
                         "--listen", f"{address}:1935", "--ring", self.rings[host],
                         "--shards", "2", "--proxy-protocol", "--trusted-proxies", f"{LB}/32",
                         "--http-listen", f"{address}:8080", "--http-token", TOKEN,
                         "--on-duplicate", "takeover", "--drain-timeout", "6"))
        self.nodes[host] = node
        self.wait_for(lambda: self.http(host, "GET", "/readyz")[0] == 200, 15,
                      f"node {host} ready")
        return node

    def http(self, host, method, path):
        argv = ["curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", "-X", method]
        if method == "POST":
            argv += ["-H", f"Authorization: Bearer {TOKEN}"]
        argv.append(f"http://{Network.HOSTS[host]}:8080{path}")
        result = run(*self.exec_in(host, *argv), check_rc=False)
        body, _, code = result.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), body

    def streams(self, host):
        status, body = self.http(host, "GET", "/v1/streams")
        if status != 200:
            return []
        return json.loads(body)["streams"]

    def names_on(self, host):
        return {s["name"] for s in self.streams(host)}

    def metric(self, host, name):
        _, body = self.http(host, "GET", "/metrics")
        m = re.search(rf"^{re.escape(name)} (\S+)$", body, re.M)
        return float(m.group(1)) if m else None

    @staticmethod
    def wait_for(predicate, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise Failure(f"timed out after {seconds} s waiting for: {what}")

    # ---- HAProxy ----

    def start_haproxy(self):
        config = os.path.join(self.work, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(f"""global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend rtmp
    bind {LB}:1935
    default_backend nodes
backend nodes
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server send-proxy-v2 check port 8080 inter 300ms fall 1 rise 2
    server a {NODE_A}:1935
    server b {NODE_B}:1935
""")
        self.procs.start("haproxy", self.exec_in("lb", "haproxy", "-db", "-f", config))

    def wait_balanced(self, host):
        # HAProxy takes a node once two health checks in a row passed (rise 2, 300 ms).
        time.sleep(1.5)

    # ---- publishers ----

    def start_ffmpeg(self, i, clip):
        p = self.procs.start(
            f"ffmpeg{i}",
            self.exec_in("pub", "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
                         "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv",
                         f"rtmp://{LB}:1935/live/ff{i}"))
        self.ffmpeg[i] = p
        return p

    def start_load(self, name, app, duration):
        out = open(os.path.join(self.work, f"{name}.json"), "wb")
        return self.procs.start(
            name,
            self.exec_in("pub", os.path.join(self.bin, "uringest-load"),
                         "--target", f"{LB}:1935", "--publishers", str(LOAD_PUBLISHERS),
                         "--app", app, "--duration", str(duration), "--bitrate", "300k",
                         "--fps", "25", "--verify", "--ring",
                         f"{self.rings['a']},{self.rings['b']}", "--reconnect", "--json"),
            stdout=out)

    @staticmethod
    def finish_load(p, seconds):
        try:
            p.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise Failure(f"{p.name} did not end in {seconds} s; its log:\n{read(p.log_path)}")
        path = p.log_path[:-len(".log")] + ".json"
        text = read(path)
        try:
            return json.loads(text), p.returncode
        except json.JSONDecodeError:
            raise Failure(f"{p.name}: no JSON report (exit {p.returncode}):\n{text}\n"
                          f"{read(p.log_path)}")


def make_clip(work):
    clip = os.path.join(work, "clip.flv")
    run("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
        "testsrc=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "8",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-f", "flv", clip)
    return clip


def load_names(app):
    return {f"{app}/load{i}" for i in range(LOAD_PUBLISHERS)}


def phase_addresses(fleet):
    """1. The publishers' own addresses, behind HAProxy; untrusted sources refused."""
    for host in ("a", "b"):
        for s in fleet.streams(host):
            check(s["publisher"].startswith(PUB + ":"),
                  f"node {host}: {s['name']} shows publisher {s['publisher']}, not {PUB}")
        text = read(fleet.nodes[host].log_path)
        check(re.search(rf"conn \d+ {re.escape(PUB)}:\d+: publisher's address from the PROXY v2 "
                        rf"header of {re.escape(LB)}:\d+", text),
              f"node {host}'s log names no publisher from a PROXY v2 header:\n{text[-3000:]}")
        check(not re.search(rf"conn \d+ {re.escape(LB)}:\d+: closed", text),
              f"node {host} logged a connection of HAProxy's (a health check?) at info")
    # A host that is not --trusted-proxies may not connect at all.
    run(*fleet.exec_in("pub", "bash", "-c", f"exec 3<>/dev/tcp/{NODE_A}/1935; sleep 0.3"),
        check_rc=False)
    time.sleep(0.3)
    check(re.search(rf"{re.escape(PUB)}:\d+: connection refused: PROXY protocol headers are "
                    r"taken only from --trusted-proxies",
                    read(fleet.nodes["a"].log_path)),
          "node A did not refuse a direct connection from an untrusted host")
    log("publishers' own addresses on both nodes; an untrusted host refused")


def phase_drain(fleet, clip):
    """2. Drain A: capable publishers move to B in a GOP; ffmpeg waits for the timeout."""
    names = load_names("live")
    on_a = names & fleet.names_on("a")
    check(len(on_a) >= 10 and len(names & fleet.names_on("b")) >= 10,
          f"HAProxy's leastconn put {len(on_a)} load publishers on A, the rest on B")
    check({"live/ff0", "live/ff1"} <= fleet.names_on("a"), "the ffmpeg publishers are not on A")
    status, body = fleet.http("a", "POST", "/v1/drain")
    drained_at = time.monotonic()
    check(status == 202, f"POST /v1/drain: {status} {body}")
    log(f"drain of A started: {len(on_a)} load publishers and 2 ffmpeg on it")
    status, body = fleet.http("a", "GET", "/readyz")
    check(status == 503 and "draining" in body, f"A's /readyz while draining: {status} {body}")
    check(fleet.metric("a", "uringest_draining") == 1, "A's /metrics: uringest_draining is not 1")
    # Every capable publisher leaves A within a GOP and a second, and is live on B.
    fleet.wait_for(lambda: not (names & fleet.names_on("a")), GOP_S + 1.5,
                   "the load publishers leaving A (one GOP)")
    moved_s = time.monotonic() - drained_at
    fleet.wait_for(lambda: names <= fleet.names_on("b"), 3, "every load publisher live on B")
    check(fleet.metric("a", "uringest_drain_reconnect_requests_total") == len(on_a),
          f"A sent {fleet.metric('a', 'uringest_drain_reconnect_requests_total')} reconnect "
          f"requests, not {len(on_a)}")
    log(f"the {len(on_a)} load publishers left A {moved_s:.1f} s after the drain began")
    # The ffmpeg publishers can't follow: they stream on A until --drain-timeout (6 s).
    check({"live/ff0", "live/ff1"} <= fleet.names_on("a"),
          "an ffmpeg publisher left A before the drain timeout")
    node_a = fleet.nodes["a"]
    try:
        node_a.wait(timeout=6 + 8)
    except subprocess.TimeoutExpired:
        raise Failure("node A did not stop after the drain timeout")
    check(node_a.returncode == 0, f"node A exited {node_a.returncode} after its drain")
    a_log = read(node_a.log_path)
    check("drain: complete" in a_log and "--drain-timeout (6s) has passed" in a_log,
          f"A's log lacks the drain's end:\n{a_log[-3000:]}")
    for i in (0, 1):
        fleet.ffmpeg[i].wait(timeout=10)
    log("A closed the ffmpeg publishers at the drain timeout and stopped")
    for i in (0, 1):
        fleet.start_ffmpeg(i, clip)
    fleet.wait_for(lambda: {"live/ff0", "live/ff1"} <= fleet.names_on("b"), 10,
                   "the restarted ffmpeg publishers live on B")
    log("the restarted ffmpeg publishers reached B through HAProxy")


def check_drain_report(report, rc, moved):
    check(report["verified"], "the load run did not verify")
    check(report["lost"] == 0 and report["duplicated"] == 0 and report["out_of_order"] == 0,
          f"frames lost {report['lost']}, duplicated {report['duplicated']}, out of order "
          f"{report['out_of_order']} across the drain")
    check(report["delivered"] == report["sent"] and report["sent"] > 0,
          f"delivered {report['delivered']} of {report['sent']}")
    followed = [s for s in report["streams"] if s.get("reconnect_requests", 0) > 0]
    check(len(followed) == moved, f"{len(followed)} publishers followed a reconnect request, "
                                  f"{moved} were asked")
    for s in followed:
        by_ring = s.get("delivered_by_ring", {})
        check(len([n for n in by_ring.values() if n > 0]) == 2,
              f"{s['name']}: moved, but its frames are not in both rings: {by_ring}")
    check(rc == 0 and report["ok"], f"uringest-load exited {rc}")
    log(f"drain run: {report['sent']} frames sent, every one delivered once "
        f"({len(followed)} publishers on both nodes)")


def phase_kill(fleet, clip):
    """3. A restarted; B killed: its publishers reconnect to A, the loss counted exactly."""
    fleet.start_node("a")
    fleet.wait_balanced("a")
    load = fleet.start_load("load2", "kill", 20)
    names = load_names("kill")
    fleet.wait_for(lambda: names <= fleet.names_on("a") | fleet.names_on("b"), 15,
                   "the second run's publishers live")
    time.sleep(3)
    on_b = names & fleet.names_on("b")
    check(len(on_b) >= 10, f"only {len(on_b)} of the second run's publishers on B")
    fleet.nodes["b"].send_signal(signal.SIGKILL)
    fleet.nodes["b"].wait()
    log(f"B killed with {len(on_b)} load publishers and the ffmpeg ones on it")
    fleet.wait_for(lambda: names <= fleet.names_on("a"), 10,
                   "every publisher of the second run live on A")
    for i in (0, 1):
        fleet.ffmpeg[i].wait(timeout=15)
        fleet.start_ffmpeg(i, clip)
    fleet.wait_for(lambda: {"live/ff0", "live/ff1"} <= fleet.names_on("a"), 10,
                   "the restarted ffmpeg publishers live on A")
    report, rc = fleet.finish_load(load, 60)
    lost = 0
    for s in report["streams"]:
        check(s["delivered"] + s["lost"] == s["sent"],
              f"{s['name']}: delivered {s['delivered']} + lost {s['lost']} != sent {s['sent']}")
        check(s["duplicated"] == 0 and s["out_of_order"] == 0,
              f"{s['name']}: duplicated {s['duplicated']}, out of order {s['out_of_order']}")
        if s["name"] not in on_b:
            check(s["lost"] == 0, f"{s['name']} was on A and lost {s['lost']} frames")
            check(s.get("reconnects", 0) == 0, f"{s['name']} was on A and reconnected")
        else:
            check(s.get("reconnects", 0) >= 1, f"{s['name']} was on B and never reconnected")
            # At 25 fps, what B had not written when it died and what was queued to it:
            # a second's frames at most.
            check(s["lost"] <= 25, f"{s['name']} lost {s['lost']} frames to B's death")
        lost += s["lost"]
    check(report["lost"] == lost, f"the report's loss {report['lost']} != its streams' {lost}")
    check(report["duplicated"] == 0, "duplicates after B's death")
    check((rc != 0) == (lost > 0), f"uringest-load exited {rc} with {lost} frames lost")
    log(f"kill run: {report['sent']} frames sent, {lost} lost with B (the verifier's count; "
        f"only its {len(on_b)} publishers may lose any), every other frame delivered once")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the build's bin/ directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("SKIP: the fleet test builds network namespaces: it needs root")
        return SKIP
    for tool in ("ip", "haproxy", "ffmpeg", "curl"):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} is missing (./uringest.sh test installs it)")
            return 1
    work = tempfile.mkdtemp(prefix="uringest-fleet-")
    fleet = Fleet(args, work)
    ok = False
    try:
        fleet.net.create()
        clip = make_clip(work)
        fleet.start_node("a")
        fleet.start_haproxy()
        fleet.wait_for(lambda: run(*fleet.exec_in("pub", "bash", "-c",
                                                  f"exec 3<>/dev/tcp/{LB}/1935"),
                                   check_rc=False).returncode == 0, 10, "HAProxy listening")
        fleet.wait_balanced("a")
        for i in (0, 1):
            fleet.start_ffmpeg(i, clip)
        fleet.wait_for(lambda: {"live/ff0", "live/ff1"} <= fleet.names_on("a"), 10,
                       "the ffmpeg publishers live on A")
        fleet.start_node("b")
        fleet.wait_balanced("b")
        load = fleet.start_load("load1", "live", 20)
        fleet.wait_for(lambda: load_names("live") <= fleet.names_on("a") | fleet.names_on("b"),
                       15, "50 load publishers live")
        phase_addresses(fleet)
        moved = len(load_names("live") & fleet.names_on("a"))
        phase_drain(fleet, clip)
        report, rc = fleet.finish_load(load, 40)
        check_drain_report(report, rc, moved)
        phase_kill(fleet, clip)
        ok = True
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
    finally:
        fleet.procs.close()
        fleet.net.close()
        if not ok:
            for p in fleet.procs.running:
                print(f"---- {p.name} (last lines of {p.log_path})")
                print("\n".join(read(p.log_path).splitlines()[-25:]))
        for ring in fleet.rings.values():
            for f in os.listdir("/dev/shm"):
                if f.startswith(ring):
                    os.unlink(os.path.join("/dev/shm", f))
        if ok:
            shutil.rmtree(work, ignore_errors=True)
    print("PASS" if ok else f"the logs are in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
