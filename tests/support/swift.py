"""A real object store with the S3 API for the tests: OpenStack Swift 2.30 (Debian 12's packages)
with its s3api middleware, on loopback ports, started and stopped by the tests.

What runs, as children of the test process (each in a session of its own, killed with it by
setpriv --pdeathsig), from configurations in a fresh temporary directory:

- the account, container and object servers, one process each (workers = 0), on one device
  directory of the temporary directory, with rings of one replica and one device each;
- the proxy, with s3api (the S3 API) and tempauth (one user, test:tester, admin of its account
  AUTH_test; its S3 access key is "test:tester", its secret "testing");
- a memcached, for the proxy's cache middleware, where tempauth keeps its tokens.

What does not run: Swift's background daemons (replicators, auditors, updaters, the reaper,
the sharder and the reconciler). With one replica nothing needs replicating or auditing. The
object server updates the container's listing as part of each PUT and DELETE; one it could not
make in time (container_update_timeout, 1 s) is queued for the object-updater, which does not
run: that object would stay out of the listing (or in it) for good. Listings are eventually
consistent in Swift, here "eventually" may be never; nothing in these tests' load has shown it.
Without the container-updater, the account's per-container object counts and bytes are not
kept up to date either. Reads and writes of objects themselves are immediate.

Anonymous readers (apt, dnf, curl) read a public bucket through Swift's own API, not S3's:
`public_url()`. s3api hands a request without S3 credentials on to Swift, whose paths all begin
with /v1/<account>: an unsigned path-style S3 URL (/bucket/key) is a 400 Bad Request there.
/v1/AUTH_test/<bucket>/<key> answers anonymous GET and HEAD once the container's read ACL lets
anyone in (`make_public_bucket`).

The store starts in about 3 s on 2 cores (the four Python servers' start-up, mostly); one a
module is plenty (a fixture of scope "module"). Its logs are in `SwiftStore.dir`.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from tests.support import harness

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SERVERS = ("account", "container", "object")
# The programs Debian's swift, swift-{proxy,account,container,object} and memcached packages install.
TOOLS = (
    "swift-proxy-server", "swift-account-server", "swift-container-server",
    "swift-object-server", "memcached", "setpriv",
)  # fmt: skip
ACCOUNT = "test"
USER = "tester"
PASSWORD = "testing"
# s3api's `location`: the region S3 clients sign their requests for (any other is refused).
REGION = "us-east-1"
# Small rings: 2^6 partitions on a single device.
PART_POWER = 6
# swift.conf, which every Swift program reads from a fixed path (swift.common.utils.SWIFT_CONF_FILE,
# /etc/swift/swift.conf): the hash path salts and one replicated storage policy.
SWIFT_CONF = """\
[swift-hash]
swift_hash_path_prefix = mmpkg-tests
swift_hash_path_suffix = mmpkg-tests

[storage-policy:0]
name = Policy-0
default = yes
"""
# The servers' start: the package's program (its own interpreter, with Debian's python3-swift),
# reading our swift.conf instead of /etc/swift's, so the store neither depends on the host's
# Swift configuration nor changes it. argv: swift.conf, program, its arguments.
LAUNCHER = (
    "import runpy, sys\n"
    "import swift.common.utils\n"
    "swift.common.utils.SWIFT_CONF_FILE = sys.argv.pop(1)\n"
    "sys.argv.pop(0)\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
# The proxy's pipeline, as in Swift's sample proxy-server.conf with s3api set before its auth
# (tempauth), as s3api's documentation asks; slo after both, as s3api's multipart uploads are
# static large objects (without slo in the pipeline it refuses them).
PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl "
    "ratelimit s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server"
)
# The rings: what `swift-ring-builder <server>.builder create 6 1 1`, `add r1z1-127.0.0.1:<port>/d1
# 1` and `rebalance` do, with the same RingBuilder, in one process for the three of them rather
# than nine (0.5 s instead of 4). argv: {ring file: port}.
RING_MAKER = f"""\
import json, sys
from swift.common.ring import RingBuilder
for path, port in json.loads(sys.argv[1]).items():
    builder = RingBuilder({PART_POWER}, 1, 1)
    builder.add_dev({{
        "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port, "replication_ip": "127.0.0.1",
        "replication_port": port, "device": "d1", "weight": 1.0, "meta": "",
    }})
    builder.rebalance()
    builder.get_ring().save(path)
"""
START_ATTEMPTS = 3
# Straight to the store, whatever http_proxy the test process was given.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def s3_config() -> Config:
    """What an S3 client (boto3) needs to talk to Swift 2.30's s3api.

    Path-style addressing: virtual-hosted buckets (bucket.127.0.0.1) would need s3api's
    storage_domain and DNS.

    Checksums only where an operation requires one. botocore 1.36 and later otherwise add a
    CRC32 to every upload: over plain HTTP, as here, as a header s3api ignores, but over HTTPS,
    as to any real store, as the trailer of an `aws-chunked` body (x-amz-content-sha256:
    STREAMING-UNSIGNED-PAYLOAD-TRAILER), which s3api 2.30 refuses: 501 NotImplemented, "using
    aws-chunked is not supported". It also asks for checksums in responses (x-amz-checksum-mode),
    which s3api never sends.

    Not helped by this: DeleteObjects, whose checksum botocore 1.36 made a CRC32 instead of the
    Content-MD5 s3api 2.30 requires ("Missing required header for this request: Content-MD5").
    A client deletes one object at a time (DeleteObject), or adds the Content-MD5 itself in a
    `before-sign.s3.DeleteObjects` handler.
    """
    return Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


@dataclass(frozen=True)
class SwiftStore:
    """A running store: its proxy's address and the S3 credentials of its one user."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    # The Swift account the S3 user's buckets are containers of.
    account: str
    dir: Path

    def env(self) -> dict[str, str]:
        """The environment an S3 client (boto3 1.28 and later, the aws command) reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def public_url(self, bucket: str) -> str:
        """Where anonymous clients read `bucket`'s objects (`public_url(bucket)/key`) once it is
        public (make_public_bucket): Swift's API, as the module's docstring says why."""
        return f"{self.endpoint}/v1/{self.account}/{bucket}"

    def client(self) -> S3Client:
        """An S3 client of the store's user."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=s3_config(),
        )

    def make_public_bucket(self, name: str) -> str:
        """Create bucket `name` through the S3 API, anonymously readable; its public_url.

        s3api (without s3_acl, its default) turns the canned ACL public-read into the
        container's Swift read ACL `.r:*,.rlistings`: anyone may read its objects and list it.
        (Its GetBucketAcl does not show that: without s3_acl it always answers "owner,
        FULL_CONTROL".) A multipart upload's segments live in a second container,
        <name>+segments, which stays private: Swift's slo reads them for whoever may read the
        object.
        """
        self.client().create_bucket(Bucket=name, ACL="public-read")
        return self.public_url(name)

    def swift_token(self) -> str:
        """A tempauth token of the store's user, for Swift's own API."""
        response = _request(
            "GET",
            f"{self.endpoint}/auth/v1.0",
            {"X-Auth-User": self.access_key, "X-Auth-Key": self.secret_key},
        )
        return response.headers["X-Auth-Token"]


@contextlib.contextmanager
def swift_store() -> Iterator[SwiftStore]:
    """Start a Swift store in a fresh temporary directory (about 3 s) and stop it and delete
    the directory when the block ends."""
    harness.require(*TOOLS, root=False)
    base = Path(tempfile.mkdtemp(prefix="mmpkg-swift-", dir=_xattr_dir()))
    try:
        yield from _start(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _xattr_dir() -> str:
    """A directory for the store: the object server keeps each object's metadata in user
    extended attributes of its file. tmpfs has them only since Linux 6.6, and /tmp is a tmpfs
    on Debian 13 and many CI runners: then /var/tmp, on disk, which has them."""
    for candidate in (tempfile.gettempdir(), "/var/tmp"):
        with tempfile.NamedTemporaryFile(dir=candidate) as probe:
            try:
                os.setxattr(probe.name, "user.mmpkg-probe", b"1")
            except OSError as e:
                if e.errno in (errno.ENOTSUP, errno.EPERM):
                    continue
                raise
            return candidate
    raise harness.HarnessError("no directory here with user extended attributes (/tmp, /var/tmp) for Swift")


@dataclass
class _Process:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def _start(base: Path) -> Iterator[SwiftStore]:
    for attempt in itertools.count(1):
        run = base / f"run{attempt}"
        run.mkdir()
        ports = {name: _free_port() for name in ("proxy", "memcached", *SERVERS)}
        processes: list[_Process] = []
        # Swift logs to syslog as well as to the console (-v, its log file here): a UDP socket of
        # our own that nobody reads keeps those copies out of the host's syslog.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as syslog:
            syslog.bind(("127.0.0.1", 0))
            try:
                _configure(run, ports, syslog_port=syslog.getsockname()[1])
                processes = _spawn(run, ports)
                store = SwiftStore(
                    endpoint=f"http://127.0.0.1:{ports['proxy']}",
                    access_key=f"{ACCOUNT}:{USER}",
                    secret_key=PASSWORD,
                    region=REGION,
                    account=f"AUTH_{ACCOUNT}",
                    dir=run,
                )
                if not _wait_ready(store, processes):
                    # Another process took a port between _free_port and the bind: other ports.
                    logs = "".join(p.log.read_text(errors="replace") for p in processes)
                    taken = "Address already in use" in logs or "Could not bind to" in logs
                    if attempt >= START_ATTEMPTS or not taken:
                        raise harness.HarnessError(f"Swift did not start:\n{_logs(processes)}")
                    _stop(processes)
                    continue
            except BaseException:
                _stop(processes)
                raise
            try:
                yield store
                return
            finally:
                _stop(processes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configure(run: Path, ports: Mapping[str, int], *, syslog_port: int) -> None:
    """swift.conf, the servers' and the proxy's configurations and the rings, in `run`."""
    (run / "swift.conf").write_text(SWIFT_CONF)
    devices = run / "srv"
    (devices / "d1").mkdir(parents=True)
    (run / "cache").mkdir()
    # Whoever runs the tests: as root, root (Swift would switch to its `swift` user otherwise,
    # who cannot write here); as anyone else, themselves, which setuid to one's own ids allows.
    user = pwd.getpwuid(os.geteuid()).pw_name
    common = f"""\
[DEFAULT]
bind_ip = 127.0.0.1
workers = 0
user = {user}
swift_dir = {run}
devices = {devices}
mount_check = false
disable_fallocate = true
# A port taken since _free_port: give up at once (and start again on others) rather than
# retrying the bind for 30 s.
bind_timeout = 1
recon_cache_path = {run / "cache"}
log_udp_host = 127.0.0.1
log_udp_port = {syslog_port}
"""
    for server in SERVERS:
        (run / f"{server}-server.conf").write_text(
            f"{common}bind_port = {ports[server]}\n\n"
            f"[pipeline:main]\npipeline = {server}-server\n\n"
            f"[app:{server}-server]\nuse = egg:swift#{server}\n"
        )
    rings = {str(run / f"{server}.ring.gz"): ports[server] for server in SERVERS}
    harness.run_host(
        [_interpreter(_program("proxy")), "-c", RING_MAKER, json.dumps(rings)],
        timeout=60,
        where="Swift's rings",
    )
    filters = {
        "catch_errors": "", "gatekeeper": "", "healthcheck": "", "proxy-logging": "",
        "listing_formats": "", "bulk": "", "tempurl": "", "ratelimit": "", "copy": "",
        "slo": "", "dlo": "", "versioned_writes": "", "symlink": "",
        "cache": f"memcache_servers = 127.0.0.1:{ports['memcached']}\n",
        # location: the region clients sign for; s3_acl stays off (its default): bucket ACLs are
        # the containers' Swift ACLs.
        "s3api": f"location = {REGION}\n",
        "tempauth": f"user_{ACCOUNT}_{USER} = {PASSWORD} .admin\n",
    }  # fmt: skip
    egg = {"cache": "memcache", "proxy-logging": "proxy_logging"}
    sections = "".join(
        f"[filter:{name}]\nuse = egg:swift#{egg.get(name, name)}\n{extra}\n"
        for name, extra in filters.items()
    )
    (run / "proxy-server.conf").write_text(
        f"{common}bind_port = {ports['proxy']}\n\n"
        f"[pipeline:main]\npipeline = {PIPELINE}\n\n"
        "[app:proxy-server]\nuse = egg:swift#proxy\n"
        # The first request to an account creates it; an admin may create and delete them.
        "account_autocreate = true\nallow_account_management = true\n\n"
        f"{sections}"
    )


def _spawn(run: Path, ports: Mapping[str, int]) -> list[_Process]:
    """Start memcached, the three servers and the proxy."""
    argvs: dict[str, list[str]] = {
        # -U 0: no UDP; -u: memcached refuses to run as root without being told to.
        "memcached": [
            "memcached", "-l", "127.0.0.1", "-p", str(ports["memcached"]), "-U", "0", "-m", "16",
            *(["-u", "root"] if os.geteuid() == 0 else []),
        ],
    }  # fmt: skip
    for server in (*SERVERS, "proxy"):
        program = _program(server)
        argvs[server] = [
            _interpreter(program), "-c", LAUNCHER, str(run / "swift.conf"), program,
            str(run / f"{server}-server.conf"), "--verbose",
        ]  # fmt: skip
    processes = []
    try:
        for name, argv in argvs.items():
            log = run / f"{name}.log"
            with log.open("ab") as out:
                # --pdeathsig: the server dies with the test process however that ends; a session
                # of its own, so that a ^C to pytest does not reach it before the fixture stops it.
                proc = subprocess.Popen(
                    ["setpriv", "--pdeathsig=KILL", "--", *argv],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=harness.host_env(), cwd=run, start_new_session=True,
                )  # fmt: skip
            processes.append(_Process(name, ports[name], proc, log))
    except BaseException:
        _stop(processes)
        raise
    return processes


def _program(server: str) -> str:
    found = shutil.which(f"swift-{server}-server", path=harness.SAFE_PATH)
    assert found is not None  # harness.require
    return found


def _interpreter(program: str) -> str:
    """The interpreter of a Python program's #! line: Debian's /usr/bin/python3, which has
    python3-swift, where `python3` on PATH may be another one (/usr/local/bin, a venv's)."""
    with open(program, "rb") as f:
        line = f.readline().decode()
    if not line.startswith("#!"):
        raise harness.HarnessError(f"{program} is not a script")
    return line[2:].split()[0]


def _wait_ready(store: SwiftStore, processes: Sequence[_Process], timeout: float = 60.0) -> bool:
    """True once each process listens on its port and the proxy authenticates the user and reads
    its account; False when a process exited first."""
    deadline = time.monotonic() + timeout
    while True:
        if any(p.proc.poll() is not None for p in processes):
            return False
        if all(_listens(p.proc.pid, p.port) for p in processes):
            try:
                # tempauth's token (kept in memcached), then the account (the account server;
                # autocreated by the first request).
                headers = {"X-Auth-Token": store.swift_token()}
                _request("HEAD", f"{store.endpoint}/v1/{store.account}", headers)
                return True
            except (OSError, KeyError):
                pass
        if time.monotonic() > deadline:
            raise harness.HarnessError(f"Swift was not ready in {timeout:g} s:\n{_logs(processes)}")
        time.sleep(0.05)


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` itself listens on TCP `port`. Not a connect: when another process
    took the port first (a store of another pytest-xdist worker), a connect reaches that one
    while ours is still trying to bind."""
    try:
        owned = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:  # exited meanwhile
        return False
    # sl local_address rem_address st ... inode; st 0A: LISTEN
    rows = (line.split() for line in table)
    return any(
        row[3] == "0A" and int(row[1].rpartition(":")[2], 16) == port and f"socket:[{row[9]}]" in owned
        for row in rows
    )


def _request(method: str, url: str, headers: Mapping[str, str]) -> http.client.HTTPResponse:
    """A request to the store, its body read; urllib.error.HTTPError for an error status."""
    request = urllib.request.Request(url, method=method, headers=dict(headers))
    with _OPENER.open(request, timeout=10) as response:
        response.read()
        return response  # type: ignore[no-any-return]


def _logs(processes: Sequence[_Process]) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.log.read_text(errors='replace')[-2000:]}" for p in processes)


def _stop(processes: Sequence[_Process]) -> None:
    """SIGTERM (Swift's servers and memcached exit at once), then SIGKILL."""
    for p in processes:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.proc.wait(10)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(10)
