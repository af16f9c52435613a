"""The container tier's engine, images and containers (tests/test_docker.py).

- `engine()`: a Docker engine that answers, found or started by `.ci/dockerd` with the flags this
  kind of machine needs (no bridge, no firewall rules: the containers use the host's network);
  `None` when there is none to be had.
- `images()`: MMPKG_TEST_IMAGES (comma-separated, e.g. `ubuntu:24.04,debian:13,almalinux:9`,
  the CI templates' defaults from mmpkg/packaging/ci_images.py), else `LOCAL_IMAGE`, which
  `import_local_image()` makes from the cached mmdebstrap root, for machines that reach no
  image registry (tests/test_ci_templates.py names it in MMPKG_TEST_IMAGES).
- `Container`: one running container of a compose project, driven with `docker exec`; `family`
  says which package manager the image has, so one scenario covers deb and rpm images.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import harness

CHECKOUT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker" / "compose.yml"
LOCAL_IMAGE = "mmpkg-test/debian:12"
SERVICE = "target"
ENGINE_TOOLS = ("docker", "docker-compose")
# `docker` is the client; Debian's docker.io has it, and the engine, dockerd.
harness.PROVIDERS.update({"docker": "docker.io", "dockerd": "docker.io", "docker-compose": "docker-compose"})


def images() -> list[str]:
    return images_of(os.environ.get("MMPKG_TEST_IMAGES", ""))


def images_of(given: str) -> list[str]:
    """MMPKG_TEST_IMAGES's images, in order; none given is LOCAL_IMAGE, as is the name itself."""
    return [i.strip() for i in given.split(",") if i.strip()] or [LOCAL_IMAGE]


@dataclass(frozen=True)
class Engine:
    host: str  # DOCKER_HOST

    def env(self, **extra: str) -> dict[str, str]:
        return harness.host_env({"DOCKER_HOST": self.host, **extra})

    def docker(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return harness.run_host(["docker", *args], env=self.env(), check=check, input=input, where="docker")

    def compose_command(self, image: str, packages: Path) -> str:
        """The command pytest-docker runs compose with (through a shell): Debian 12 has only
        compose v1, `docker-compose`; the variables are the compose file's."""
        assignments = {
            "DOCKER_HOST": self.host,
            "MMPKG_TEST_IMAGE": image,
            "MMPKG_TEST_PACKAGES_DIR": str(packages),
        }
        return shlex.join(["env", *(f"{k}={v}" for k, v in assignments.items()), "docker-compose"])


@contextmanager
def engine() -> Iterator[Engine | None]:
    """An engine for the block: the one DOCKER_HOST (or the default socket) names if it answers,
    else one started by .ci/dockerd in a temporary directory and stopped afterwards."""
    if any(shutil.which(t, path=harness.SAFE_PATH) is None for t in ENGINE_TOOLS):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="mmpkg-dockerd-", dir="/tmp") as state:
        env = {
            **harness.host_env(),
            **({"DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ else {}),
        }
        started = subprocess.run(
            [str(CHECKOUT / ".ci/dockerd"), "start", state],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0:
            harness.log.warning("no Docker engine: %s", started.stderr.strip())
            yield None
            return
        try:
            yield Engine(started.stdout.strip())
        finally:
            subprocess.run([str(CHECKOUT / ".ci/dockerd"), "stop", state], env=env, check=False)


def import_local_image(engine: Engine, root: Path) -> str:
    """LOCAL_IMAGE from the cached root (about 3 s), unless the engine has it from this root."""
    label = f"mmpkg.root={root.name}"
    found = engine.docker("image", "inspect", "--format", "{{json .Config.Labels}}", LOCAL_IMAGE, check=False)
    if found.returncode == 0 and json.loads(found.stdout or "null") == {"mmpkg.root": root.name}:
        return LOCAL_IMAGE
    with tempfile.TemporaryDirectory(prefix="mmpkg-image-") as tmp:
        tarball = Path(tmp) / "root.tar"
        harness.run_host(["tar", "-C", root, "--numeric-owner", "-cf", tarball, "."])
        engine.docker("import", "-c", f"LABEL {label}", "-c", 'CMD ["/bin/bash"]', str(tarball), LOCAL_IMAGE)
    return LOCAL_IMAGE


@dataclass(frozen=True)
class Container:
    engine: Engine
    id: str
    ip: str  # where the host reaches what the container listens on

    @classmethod
    def of(cls, engine: Engine, project: str, *, ip: str) -> Container:
        """The compose project's running container (found by compose's labels, as v1 and v2
        both set them)."""
        ps = engine.docker(
            "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
            "--filter", f"label=com.docker.compose.service={SERVICE}",
        )  # fmt: skip
        (cid,) = ps.stdout.split()
        return cls(engine, cid, ip)

    def sh(
        self, script: str, *, check: bool = True, input: str | None = None, user: str = "root"
    ) -> subprocess.CompletedProcess[str]:
        """`script` under sh in the container; stdin is at EOF unless `input`, so a prompt fails."""
        args = ["exec", *(["-i"] if input is not None else []), "-u", user, self.id, "sh", "-c", script]
        return self.engine.docker(*args, check=check, input=input)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.sh(shlex.join(argv), check=check)

    def detached(self, *argv: str, user: str, workdir: str) -> None:
        self.engine.docker("exec", "-d", "-u", user, "-w", workdir, self.id, *argv)

    def read_text(self, path: str) -> str:
        return self.run("cat", path).stdout

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_text(path))

    def write_text(self, path: str, text: str) -> None:
        """Rewrite `path` in place: its owner and mode stay as they are, as after an editor's save."""
        self.sh(f"cat > {shlex.quote(path)}", input=text)

    def exists(self, path: str) -> bool:
        return self.run("test", "-e", path, check=False).returncode == 0

    def family(self) -> str:
        """`deb` or `rpm`: the image's own package manager."""
        if self.sh("command -v apt-get && command -v dpkg", check=False).returncode == 0:
            return "deb"
        if self.sh("command -v dnf || command -v yum", check=False).returncode == 0:
            return "rpm"
        raise AssertionError("the image has neither apt-get and dpkg nor dnf")
