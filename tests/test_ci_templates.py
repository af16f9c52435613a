"""The CI templates (ci/github, ci/gitlab): valid for their CI, and their shell steps really work.

Each template is checked against its CI system's published schema (check-jsonschema's bundled
copies, offline), and every shell block is checked by shellcheck. Then each template's blocks
run exactly as written, job after job, step after step, for the one edition and architecture the
loopback upstream (tests/support/fake_upstream.py) offers: what the repository lacks, fetch, verify and
build, the container tier, then the publish into a served directory, its check and the webhook.
Real apt in a throw-away root installs from the served tree at the end.

What the test does in the CI's place: the `uses:` actions (setup-python, QEMU, artifacts, cache)
are left out, all jobs share one working directory (the artifacts' role), `${{ }}` values come
from the table below, GitLab's dind engine is the one `.ci/dockerd` gives the container tier,
the PostgreSQL service is a cluster of the test's own, and GitLab's child pipeline is its jobs
run after the parent's. mmpkg itself comes as the templates install it: the wheel and sdist of
this checkout (mmpkg/distfiles.py), served on loopback and checked against their sha256, into
a virtual environment of the pipeline's own that finds the dependencies in the checkout's.
The templates default to registry images (mmpkg/packaging/ci_images.py), which this machine cannot pull:
the test gives `MMPKG_TEST_IMAGES`, the variable an administrator sets, the image the container
tier imports from its cached root (LOCAL_TIER), and runs the templates as they are written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import venv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmpkg import __version__ as mmpkg_version
from mmpkg import distfiles, docs
from mmpkg.packaging.ci_images import TEST_IMAGES, default_test_images
from mmpkg.packaging.formats import PackageFormat
from mmpkg.repo import Repository, keyring
from mmpkg.repo.clients import ClientFormat, client_config
from tests.support import docker_engine, harness, pgserver
from tests.support.docker_engine import CHECKOUT
from tests.support.fake_upstream import SigningKeys, Upstream, serve
from tests.test_repo import _serve
from tests.test_sync_served import _Log, _recording

# The served repository holds V0; upstream has two releases more.
V0, V1, V2 = "10.5.1", "10.5.2", "10.11.1"
REPO_KEY = "ci@example.invalid"
MAINTAINER = "CI Test <ci@example.com>"
GITHUB = CHECKOUT / "ci/github/mattermost-packages.yml"
GITLAB = CHECKOUT / "ci/gitlab/.gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}
RELEASES = {GITHUB: "releases", GITLAB: "mmpkg-releases"}
PUBLISH = {GITHUB: "publish", GITLAB: "mmpkg-publish"}
# GitLab's stages, in order: the template uses only the default ones, which a project that
# includes it has whatever `stages:` it declares.
GITLAB_STAGES = (".pre", "build", "test", "deploy", ".post")
BIN = Path(sys.executable).parent
# GitLab's dind service and its address are the CI's; here the tier finds its own engine.
DIND = ("DOCKER_HOST", "DOCKER_TLS_CERTDIR")
# Variables whose values are the CI's services' addresses: the test gives its own.
SERVICES = ("MMPKG_TEST_DATASOURCE",)
# What this machine gives the templates' documented inputs in place of their defaults: no
# registry answers here, so the container tier runs on the image it imports itself.
LOCAL_TIER = {"MMPKG_TEST_IMAGES": docker_engine.LOCAL_IMAGE}
# Where administrators read the templates' secrets and variables.
CI_DOC = CHECKOUT / "docs" / "automating-releases.md"


@dataclass(frozen=True)
class Step:
    job: str
    name: str
    script: str
    env: dict[str, str]  # the job's and the step's own variables, unexpanded


def _github_steps(doc: dict[str, Any]) -> list[Step]:
    steps = []
    for job_name, job in doc["jobs"].items():
        for i, step in enumerate(job["steps"]):
            if "run" in step:
                env = {**doc.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                steps.append(Step(job_name, step.get("name", str(i)), step["run"], env))
    return steps


def _gitlab_steps(doc: dict[str, Any]) -> list[Step]:
    jobs = [
        (name, job)
        for name, job in doc.items()
        if isinstance(job, dict) and "script" in job and not name.startswith(".")
    ]
    # The parent's jobs, then the child pipeline's (the same file's), each in stage order.
    jobs.sort(
        key=lambda j: ('== "parent_pipeline"' in str(_rules(doc, j[1])), GITLAB_STAGES.index(j[1]["stage"]))
    )
    # A job's script items run in one shell, one after the other: what one exports, the next sees.
    return [
        Step(
            name, "script", "\n".join(job["script"]), {**doc.get("variables", {}), **job.get("variables", {})}
        )
        for name, job in jobs
    ]


def _rules(doc: dict[str, Any], job: dict[str, Any]) -> list[Any]:
    """A GitLab job's rules, its own or those it extends."""
    if "rules" in job:
        return list(job["rules"])
    parents = job.get("extends", [])
    for parent in [parents] if isinstance(parents, str) else parents:
        found = _rules(doc, doc[parent])
        if found:
            return found
    return []


def steps_of(template: Path) -> list[Step]:
    doc = yaml.safe_load(template.read_text())
    return _github_steps(doc) if template == GITHUB else _gitlab_steps(doc)


# --- what the templates are -------------------------------------------------------------------


@pytest.mark.parametrize("template", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_template_matches_its_ci_schema_and_shellcheck(template: Path, tmp_path: Path) -> None:
    check = [str(BIN / "check-jsonschema"), "--builtin-schema", SCHEMAS[template]]
    harness.run_host([*check, template])
    # The same check refuses a job that its CI would refuse.
    broken = tmp_path / template.name
    doc = yaml.safe_load(template.read_text())
    jobs = doc["jobs"] if template == GITHUB else doc
    jobs[PUBLISH[template]]["needs"] = {"not": "a list"}
    broken.write_text(yaml.safe_dump(doc))
    assert harness.run_host([*check, broken], check=False).returncode != 0

    harness.require("shellcheck", root=False)
    for step in steps_of(template):
        assert "${{" not in step.script, f"{step.job}/{step.name} reads a CI expression, not a variable"
        out = harness.run_host(["shellcheck", "-s", "bash", "-"], input=step.script, check=False)
        assert out.returncode == 0, f"{template.name} {step.job}/{step.name}:\n{out.stdout}"


def _declared(template: Path) -> dict[str, str]:
    """The variables every job of `template` sees, as written."""
    doc = yaml.safe_load(template.read_text())
    return {k: str(v) for k, v in doc["env" if template == GITHUB else "variables"].items()}


def _default(template: Path, name: str) -> str:
    """What `name` is when the CI's settings do not give it: GitHub's `vars.X || 'default'`."""
    value = _declared(template)[name]
    if template != GITHUB:
        return value
    match = re.fullmatch(rf"\$\{{\{{ vars\.{name} \|\| '([^']*)' \}}\}}", value)
    assert match, f"{template.name}: {name} is not a repository variable with a default: {value}"
    return match[1]


@pytest.mark.parametrize("template", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_templates_test_on_the_real_images_by_default(template: Path) -> None:
    text = template.read_text()
    assert docs.update_template(template, text) == text, f"{template.name} is out of date: run `make readme`"
    images = _default(template, "MMPKG_TEST_IMAGES").split(",")
    assert images == default_test_images().split(",")
    assert images == ["ubuntu:24.04", "debian:13", "almalinux:9"]
    # Both formats are installed somewhere, and only on images a registry serves.
    assert {fmt for fmt, listed in TEST_IMAGES.items() if listed} == set(PackageFormat)
    for image in images:
        assert re.fullmatch(r"[a-z0-9]+:[0-9.]+", image), f"{image} is not a Docker Hub library image"
        assert image != docker_engine.LOCAL_IMAGE


@pytest.mark.parametrize("template", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_the_local_tier_substitutes_through_the_documented_variables(template: Path) -> None:
    documented = CI_DOC.read_text(encoding="utf-8")
    for name, value in LOCAL_TIER.items():
        # A variable every job sees, that the documentation tells administrators to set, with a
        # default that is not what this machine gives it.
        assert name in _declared(template), f"{template.name} has no {name} to set"
        assert f"| `{name}` |" in documented, f"{CI_DOC.name}'s variables do not list {name}"
        assert value not in _default(template, name).split(",")
    # The tier reads the variable as the templates pass it.
    assert docker_engine.images_of(LOCAL_TIER["MMPKG_TEST_IMAGES"]) == [docker_engine.LOCAL_IMAGE]
    assert docker_engine.images_of(default_test_images()) == default_test_images().split(",")


def _documented(kind: str) -> dict[str, str]:
    """The names docs/automating-releases.md's table of `kind` ("Secrets", "Variables") lists
    under "CI templates", each with the template it is for ("" for both)."""
    section = CI_DOC.read_text(encoding="utf-8").split("## CI templates", 1)[1].split("\n## ", 1)[0]
    table = section.split(f"\n{kind} (", 1)[1].split("\n\n", 2)[1]
    found = {}
    for row in table.splitlines()[2:]:
        cell = row.split("|")[1]
        only = re.search(r"\((GitHub|GitLab)\)", cell)
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell):
            found[name] = only.group(1).lower() if only else ""
    return found


@pytest.mark.parametrize("template", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_every_documented_secret_and_variable_reaches_the_jobs(template: Path) -> None:
    """What the documentation tells administrators to set is what the template reads: on GitHub
    a secret or variable reaches a job only through `${{ secrets.X }}` or `${{ vars.X }}`; on
    GitLab every CI/CD variable reaches every job, so each must at least be used."""
    text = template.read_text()
    ci = template.parent.name
    secrets_, variables = _documented("Secrets"), _documented("Variables")
    assert "MMPKG_TEST_DATASOURCE" in variables and "MMPKG_SIGNING_KEY" in secrets_
    for names, kind in ((secrets_, "secrets"), (variables, "vars")):
        for name, only in names.items():
            if only not in ("", ci):
                continue
            if template == GITHUB:
                assert f"{kind}.{name} " in text or f"{kind}.{name} }}" in text, (
                    f"{template.name} never reads {kind}.{name}"
                )
            else:
                # Used by the template, or read from the environment by mmpkg itself.
                used = re.search(rf"\${{?{name}\b", text) or name in _read_by_mmpkg()
                assert used, f"{template.name} never uses ${name}"
    if template == GITHUB:
        # And nothing is read that the documentation does not list.
        for kind, name in re.findall(r"\b(secrets|vars)\.([A-Z][A-Z0-9_]+)", text):
            listed = secrets_ if kind == "secrets" else variables
            assert name in listed, f"{template.name} reads {kind}.{name}, which {CI_DOC.name} does not list"


def _read_by_mmpkg() -> set[str]:
    """The variables mmpkg's own code reads from the environment, and its container tier."""
    code = "".join(p.read_text() for d in ("mmpkg", "tests") for p in (CHECKOUT / d).rglob("*.py"))
    return set(re.findall(r"environ(?:\.get\(|\[)\"(MMPKG_[A-Z0-9_]+)\"", code))


def test_the_github_template_has_no_yaml_anchors() -> None:
    """GitHub Enterprise Server before 3.17 refuses a workflow with anchors or aliases."""
    events = list(yaml.parse(GITHUB.read_text()))
    anchored = [e for e in events if getattr(e, "anchor", None) or isinstance(e, yaml.AliasEvent)]
    assert anchored == []


def test_the_gitlab_template_leaves_an_including_project_alone() -> None:
    """Included, the template changes nothing for the project's own pipelines and jobs."""
    doc = yaml.safe_load(GITLAB.read_text())
    assert not {"workflow", "default", "stages", "image", "services", "before_script", "cache"} & set(doc)
    jobs = {
        name: job
        for name, job in doc.items()
        if isinstance(job, dict) and not name.startswith(".") and name != "variables"
    }
    assert jobs and all(name.startswith("mmpkg-") for name in jobs)
    for name, job in jobs.items():
        assert job["stage"] in GITLAB_STAGES, f"{name}: stage {job['stage']} is not one of GitLab's own"
        rules = _rules(doc, job)
        assert rules and all('$MMPKG_PIPELINE == "packages"' in rule["if"] for rule in rules), name
    # Global variables are every job's, the project's too: only the template's own names.
    assert all(name.startswith("MMPKG_") for name in doc["variables"])


@pytest.mark.parametrize("template", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_the_templates_install_only_the_pinned_mmpkg(
    template: Path, mmpkg_release: tuple[str, distfiles.DistFiles], pipeline_python: Path, tmp_path: Path
) -> None:
    """The install step takes the wheel from any address, and only with the pinned sha256;
    the pins are those of a release of mmpkg, the version mmpkg/__init__.py says."""
    pins = distfiles.pinned(template.read_text())
    assert set(pins) == set(distfiles.PINNED)
    assert pins["MMPKG_VERSION"] == mmpkg_version
    assert all(re.fullmatch(r"[0-9a-f]{64}", pins[k]) for k in distfiles.PINNED[1:])
    url, files = mmpkg_release
    if template == GITHUB:
        (install,) = {s.script for s in steps_of(template) if s.name == "Install mmpkg"}
    else:
        install = yaml.safe_load(template.read_text())[".mmpkg-install"]
    env = {
        **harness.host_env(), "PATH": f"{pipeline_python}:{harness.SAFE_PATH}", "HOME": str(tmp_path),
        "PIP_NO_INDEX": "1", "MMPKG_RELEASES_URL": url, "MMPKG_VERSION": files.version,
        # Tools present: only pip's step runs.
    }  # fmt: skip
    bad = {**env, "MMPKG_WHEEL_SHA256": "0" * 64}
    out = harness.run_host(["bash", "-eo", "pipefail", "-c", install], env=bad, check=False)
    assert out.returncode != 0 and "DO NOT MATCH THE HASHES" in out.stdout + out.stderr, out
    assert list(pipeline_python.parent.glob("lib/python*/site-packages/mmpkg*")) == []


# --- the templates' steps, run --------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    harness.require(
        "gpg", "apt-ftparchive", "createrepo_c", "rpmsign", "dpkg-deb", "rsync", "jq", "curl", root=False
    )
    return SigningKeys.make(tmp_path_factory.mktemp("ci-gnupg") / "home", also=(REPO_KEY,))


@pytest.fixture(scope="module")
def upstream(keys: SigningKeys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, Path]]:
    work = tmp_path_factory.mktemp("ci-upstream")
    with serve() as up:
        for version in (V0, V1, V2):
            up.release(version, keys, work)
        (work / "key.asc").write_bytes(keys.public())
        yield up, work


@pytest.fixture(scope="module")
def mmpkg_release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, distfiles.DistFiles]]:
    """This checkout's wheel and sdist, as a release of mmpkg serves them."""
    out = tmp_path_factory.mktemp("mmpkg-release")
    files = distfiles.build(CHECKOUT, out)
    with _serve(out) as url:
        yield url, files


@pytest.fixture(scope="module")
def pipeline_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment for the pipelines' pip to install mmpkg into (never the
    checkout's own), that finds mmpkg's dependencies and the tier's tools in the checkout's."""
    env = tmp_path_factory.mktemp("pipeline-venv") / "venv"
    venv.create(env, with_pip=True)
    own = subprocess.run(
        [env / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    theirs = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # A plain path, after the environment's own: its .pth files (the checkout's editable mmpkg)
    # are not read, so mmpkg is only what the pipeline installs.
    Path(own, "checkout-deps.pth").write_text(f"{theirs}\n")
    return env / "bin"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """The CI's PostgreSQL service: a cluster on loopback, as a URL of its superuser."""
    harness.require(*pgserver.HOST_TOOLS, root=False)
    with pgserver.pg_server() as pg:
        yield f"postgres://{pgserver.SUPERUSER}:{pg.password}@127.0.0.1:{pg.port}/postgres?sslmode=disable"


@dataclass
class Pipeline:
    """One template's steps run in a working directory, with what its secrets and variables
    would hold; `served` is the directory a web server serves."""

    template: Path
    work: Path
    served: Path
    env: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)  # "job/step" -> its stdout

    def run(self, jobs: tuple[str, ...] | None = None, *, during: dict[str, Reader] | None = None) -> None:
        """Run the template's steps (of `jobs` only, if given); a job of `during` runs while its
        Reader reads the served repository."""
        job_env: dict[str, str] = {}
        current = ""
        reader: Reader | None = None
        try:
            for step in steps_of(self.template):
                if jobs is not None and step.job not in jobs:
                    continue
                if step.job != current:
                    if reader is not None:
                        reader.stop()
                    reader = (during or {}).get(step.job)
                    if reader is not None:
                        reader.start()
                    current, job_env = step.job, {}
                self._step(step, job_env)
        finally:
            if reader is not None:
                reader.stop()

    def _step(self, step: Step, job_env: dict[str, str]) -> None:
        env = {**self._variables(step.env), **self.env, **job_env}
        github_env = self.work / ".github_env"
        github_env.write_text("")
        env.update(GITHUB_ENV=str(github_env), GITHUB_OUTPUT=str(self.work / ".github_output"))
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.script],
            cwd=self.work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, (
            f"{self.template.name} {step.job}/{step.name} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
        self.outputs[f"{step.job}/{step.name}"] = proc.stdout
        # GITHUB_ENV: what a step exports to the job's later steps.
        for line in github_env.read_text().splitlines():
            key, _, value = line.partition("=")
            job_env[key] = value

    def _variables(self, declared: dict[str, str]) -> dict[str, str]:
        out = {}
        for key, value in declared.items():
            value = str(value)
            if key in DIND:
                continue
            if "${{" in value or key in SERVICES:
                assert key in self.env, f"{self.template.name}: the test gives no value for {key} ({value})"
                continue
            # GitLab expands $VARIABLES in variables; the test's values stand in for the CI's.
            out[key] = re.sub(r"\$(\w+)", lambda m: self.env.get(m[1], ""), value)
        return out


class Reader:
    """A client that runs `apt-get update` against the served repository again and again, from
    start() to stop(), as a server's timer would during a publish: every error it met is kept."""

    def __init__(self, root: harness.Root) -> None:
        self.root = root
        self.rounds = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            out = self.root.run("apt-get", "update", "--error-on=any", check=False)
            self.rounds += 1
            if out.returncode != 0:
                self.errors.append(out.stdout + out.stderr)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None


def _pipeline(
    template: Path,
    up: Upstream,
    upstream_work: Path,
    keys: SigningKeys,
    base: Path,
    release: tuple[str, distfiles.DistFiles],
    python: Path,
    database: str,
) -> Pipeline:
    work, served, home = base / "work", base / "served", base / "home"
    for d in (work, served, home):
        d.mkdir(parents=True)
    secret_key = keys._gpg("--armor", "--export-secret-keys", REPO_KEY).decode()
    key_file = base / "signing-key.asc"
    key_file.write_text(secret_key)
    releases_url, files = release
    env = {
        **harness.host_env(),
        "PATH": f"{python}:{harness.SAFE_PATH}",
        "HOME": str(home),
        # Nothing from PyPI: the pinned wheel comes by its URL, the rest is found installed.
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "MMPKG_SINCE": "10.0.0",
        "MMPKG_EDITIONS": "enterprise",  # all the loopback upstream offers
        "MMPKG_ARCHES": "amd64",
        "EDITION": "enterprise",
        "ARCH": "amd64",
        "DOCKER_DEFAULT_PLATFORM": "linux/amd64",
        "MMPKG_API_URL": up.api_url,
        "MMPKG_BASE_URL": up.url,
        "MMPKG_KEYRING": str(upstream_work / "key.asc"),
        "MMPKG_MAINTAINER": MAINTAINER,
        "MMPKG_SIGN_KEY": REPO_KEY,
        "MMPKG_SERVED": str(served),
        "MMPKG_RELEASES_URL": releases_url,
        # This checkout's files in place of the release the template pins.
        **dict(zip(distfiles.PINNED, files.pins().values(), strict=True)),
        "MMPKG_TEST_DATASOURCE": database,
        **LOCAL_TIER,
        "MMPKG_CACHE": str(base / "cache"),
        "GITHUB_TOKEN": "",
        "RUNNER_TEMP": str(base),
        "CI_PROJECT_DIR": str(work),
        "CI_PIPELINE_ID": "4711",
        "MMPKG_DEPLOY_SSH_KEY": "",
        "MMPKG_DEPLOY_KNOWN_HOSTS": "",
        # GitHub passes secrets' values, GitLab file variables' paths.
        "MMPKG_SIGNING_KEY": secret_key if template == GITHUB else str(key_file),
        "MMPKG_SIGNING_PASSPHRASE": "",
        "MMPKG_WEBHOOK_URL": f"{up.url}/hooks/{template.parent.name}",
    }
    for passed in ("DOCKER_HOST", "MMPKG_TEST_CACHE", "MMPKG_TEST_MIRROR"):
        if passed in os.environ:
            env[passed] = os.environ[passed]
    return Pipeline(template, work, served, env)


def _seed(pipeline: Pipeline, keys: SigningKeys) -> None:
    """The served repository before the pipeline's first run: V0, published with mmpkg."""
    env = {**pipeline.env, "GNUPGHOME": str(keys.home)}
    out = pipeline.work.parent / "seed"
    harness.run_host(
        [BIN / "mmpkg", "build", V0, "--edition", "enterprise", "--arch", "amd64", "--out", out,
         "--maintainer", MAINTAINER, "--base-url", env["MMPKG_BASE_URL"], "--keyring", env["MMPKG_KEYRING"],
         "--cache", pipeline.work.parent / "seed-cache"],
        env=env,
    )  # fmt: skip
    for channel in ("stable", "esr"):
        harness.run_host(
            [BIN / "mmpkg", "repo", "add", "--channel", channel, "--sign-key", REPO_KEY, pipeline.served,
             *sorted(out.glob("*.deb")), *sorted(out.glob("*.rpm"))],
            env=env,
        )  # fmt: skip


@dataclass(frozen=True)
class Published:
    pipeline: Pipeline
    reader: Reader  # the server that read the repository during the publish
    plan: _Log  # what the releases job asked the served repository for


@pytest.fixture(scope="module", params=[GITHUB, GITLAB], ids=["github", "gitlab"])
def published(
    request: pytest.FixtureRequest,
    upstream: tuple[Upstream, Path],
    keys: SigningKeys,
    mmpkg_release: tuple[str, distfiles.DistFiles],
    pipeline_python: Path,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Published]:
    # The test job runs the container tier, which needs an engine and, for its local image, root.
    harness.require(*docker_engine.ENGINE_TOOLS, "dockerd", *harness.ROOT_TOOLS)
    up, upstream_work = upstream
    template = Path(request.param)
    pipeline = _pipeline(
        template, up, upstream_work, keys, tmp_path_factory.mktemp(template.parent.name),
        mmpkg_release, pipeline_python, database,
    )  # fmt: skip
    _seed(pipeline, keys)
    written = template.read_bytes()
    with (
        _recording(pipeline.served) as (url, log),
        harness.Root(harness.pristine_root(), name="ci-reader") as root,
    ):
        pipeline.env["MMPKG_SERVED_URL"] = url
        _apt_client(root, pipeline.served, url)
        pipeline.run(jobs=(RELEASES[template],))
        plan = _Log(list(log.requested), dict(log.sent))
        reader = Reader(root)
        rest = tuple(dict.fromkeys(s.job for s in steps_of(template) if s.job != RELEASES[template]))
        pipeline.run(jobs=rest, during={PUBLISH[template]: reader})
        yield Published(pipeline, reader, plan)
    # The local images went in through the variables, not by a template changed for the run.
    assert template.read_bytes() == written


def _apt_client(root: harness.Root, served: Path, url: str) -> None:
    """`root` reads the stable channel at `url`, trusting the repository's keys alone."""
    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
    root.path(keyring.DEB_KEYRING).write_bytes((served / "keys/archive-keyring.gpg").read_bytes())
    (snippet,) = client_config(url, "stable", ClientFormat.APT)
    root.write_text(snippet.path, snippet.text)
    root.run("apt-get", "update", "--error-on=any")


@pytest.mark.docker
def test_the_pipeline_publishes_what_upstream_has_and_announces_it(
    published: Published, upstream: tuple[Upstream, Path]
) -> None:
    pipeline, reader = published.pipeline, published.reader
    up, _ = upstream
    served = Repository(pipeline.served)
    assert served.check() == []
    debs = sorted(e.version for e in served.list("stable") if e.format == "deb" and e.name == "mattermost")
    rpms = sorted(e.version for e in served.list("stable") if e.format == "rpm" and e.name == "mattermost")
    assert debs == rpms == [f"{V2}-1", f"{V0}-1", f"{V1}-1"]
    # Both are releases of ESR lines (mmpkg/sync/channels.py): the channel rules sent them there too.
    assert (
        sorted(e.version for e in served.list("esr") if e.format == "deb" and e.name == "mattermost") == debs
    )
    # The container tier ran, on the image here, with the database the service gives, before
    # anything was published.
    tier = "".join(out for step, out in pipeline.outputs.items() if "test" in step.split("/")[0])
    assert re.search(r"^1 passed", tier, re.M), tier
    texts = [body["text"] for path, body in up.posts if path == f"/hooks/{pipeline.template.parent.name}"]
    assert len(texts) == 1 and V1 in texts[0] and V2 in texts[0] and V0 not in texts[0]
    # A server reading the repository throughout the publish never met an index that named
    # what was not there yet, nor one whose hash its Release did not list.
    assert reader.rounds >= 1
    assert reader.errors == []
    # The plan read the served indices alone: not one package, a sliver of the served bytes.
    packages = [
        *pipeline.served.glob("pool/main/*/*/*.[dr][ep][bm]"),
        *pipeline.served.glob("rpm/*/*/Packages/*.rpm"),
    ]
    package_bytes = sum(p.stat().st_size for p in packages)
    fetched = [path for path in published.plan.requested if path.endswith((".deb", ".rpm"))]
    assert fetched == [] and published.plan.requested
    assert published.plan.total < package_bytes / 10, (published.plan.total, package_bytes)
    harness.log.info(
        "the plan read %d bytes; the packages served are %d", published.plan.total, package_bytes
    )
    # The next run reads the served tree and finds nothing lacking.
    pipeline.run(jobs=(RELEASES[pipeline.template],))
    assert (pipeline.work / "plan/count").read_text().strip() == "0"


@pytest.mark.docker
@pytest.mark.parametrize("published", [GITLAB], ids=["gitlab"], indirect=True)
def test_gitlab_starts_no_runner_when_nothing_is_new(published: Published) -> None:
    pipeline = published.pipeline
    check = [str(BIN / "check-jsonschema"), "--builtin-schema", SCHEMAS[GITLAB]]
    # The first run's child pipeline was this file, with the plan's pipeline to take it from.
    pipeline.run(jobs=(RELEASES[GITLAB],))
    child = yaml.safe_load((pipeline.work / "plan/pipeline.yml").read_text())
    assert child == {"mmpkg-nothing-new": {"script": ["echo nothing new"], "when": "manual"}}
    harness.run_host([*check, pipeline.work / "plan/pipeline.yml"])
    # With something to do, the child holds this file's jobs: a plan that lacks a release.
    (pipeline.work / "plan/count").write_text("1\n")
    (step,) = [s for s in steps_of(GITLAB) if s.job == RELEASES[GITLAB]]
    script = yaml.safe_load(GITLAB.read_text())[RELEASES[GITLAB]]["script"][-1]
    pipeline._step(Step(RELEASES[GITLAB], "child", script, step.env), {})
    child = yaml.safe_load((pipeline.work / "plan/pipeline.yml").read_text())
    assert child == {
        "include": [{"local": _default(GITLAB, "MMPKG_TEMPLATE")}],
        "variables": {"MMPKG_PLAN_PIPELINE": pipeline.env["CI_PIPELINE_ID"]},
    }
    harness.run_host([*check, pipeline.work / "plan/pipeline.yml"])


@pytest.mark.docker
@pytest.mark.install
def test_apt_installs_from_the_served_tree(published: Published, root: harness.Root) -> None:
    pipeline = published.pipeline
    with _serve(pipeline.served) as url:
        _apt_client(root, pipeline.served, url)
        root.apt_install("mattermost")
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V2}-1"
