"""The CI templates (ci/github, ci/gitlab): valid for their CI, and their shell steps really work.

Each template is checked against its CI system's published schema (check-jsonschema's bundled
copies, offline), and every shell block is checked by shellcheck. Then each template's blocks
run exactly as written, job after job, step after step, for the one edition and architecture the
loopback upstream (tests/support/fake_upstream.py) offers: what the repository lacks, fetch, verify and
build, the container tier, then the publish into a served directory, its check and the webhook.
Real apt in a throw-away root installs from the served tree at the end.

What the test does in the CI's place: the `uses:` actions (setup-python, artifacts, cache) are
left out, all jobs share one working directory (the artifacts' role), `${{ }}` values come from
the table below, and GitLab's dind engine is the one `.ci/dockerd` gives the container tier.
The templates default to registry images (mmpkg/packaging/ci_images.py), which this machine cannot pull:
the test gives `MMPKG_TEST_IMAGES`, the variable an administrator sets, the image the container
tier imports from its cached root (LOCAL_TIER), and runs the templates as they are written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmpkg import docs
from mmpkg.packaging.ci_images import TEST_IMAGES, default_test_images
from mmpkg.packaging.formats import PackageFormat
from mmpkg.repo import Repository, keyring
from mmpkg.repo.clients import ClientFormat, client_config
from tests.support import docker_engine, harness
from tests.support.docker_engine import CHECKOUT
from tests.support.fake_upstream import SigningKeys, Upstream, serve
from tests.test_repo import _serve

V1, V2 = "10.5.2", "10.11.1"
REPO_KEY = "ci@example.invalid"
MAINTAINER = "CI Test <ci@example.com>"
GITHUB = CHECKOUT / "ci/github/mattermost-packages.yml"
GITLAB = CHECKOUT / "ci/gitlab/.gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}
BIN = Path(sys.executable).parent
# GitLab's dind service and its address are the CI's; here the tier finds its own engine.
DIND = ("DOCKER_HOST", "DOCKER_TLS_CERTDIR")
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
    jobs = [(name, job) for name, job in doc.items() if isinstance(job, dict) and "script" in job]
    jobs.sort(key=lambda j: doc["stages"].index(j[1]["stage"]))
    # A job's script items run in one shell, one after the other: what one exports, the next sees.
    return [
        Step(
            name, "script", "\n".join(job["script"]), {**doc.get("variables", {}), **job.get("variables", {})}
        )
        for name, job in jobs
    ]


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
    jobs["publish"]["needs"] = {"not": "a list"}
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
        for version in (V1, V2):
            up.release(version, keys, work)
        (work / "key.asc").write_bytes(keys.public())
        yield up, work


@dataclass
class Pipeline:
    """One template's steps run in a working directory, with what its secrets and variables
    would hold; `served` is the directory a web server serves."""

    template: Path
    work: Path
    served: Path
    env: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)  # "job/step" -> its stdout

    def run(self, jobs: tuple[str, ...] | None = None) -> None:
        job_env: dict[str, str] = {}
        current = ""
        for step in steps_of(self.template):
            if jobs is not None and step.job not in jobs:
                continue
            if step.job != current:
                current, job_env = step.job, {}
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
            if "${{" in value:
                assert key in self.env, f"{self.template.name}: the test gives no value for {key} ({value})"
                continue
            # GitLab expands $VARIABLES in variables; the test's values stand in for the CI's.
            out[key] = re.sub(r"\$(\w+)", lambda m: self.env.get(m[1], ""), value)
        return out


def _pipeline(template: Path, up: Upstream, upstream_work: Path, keys: SigningKeys, base: Path) -> Pipeline:
    work, served, home = base / "work", base / "served", base / "home"
    for d in (work, served, home):
        d.mkdir(parents=True)
    secret_key = keys._gpg("--armor", "--export-secret-keys", REPO_KEY).decode()
    key_file = base / "signing-key.asc"
    key_file.write_text(secret_key)
    env = {
        **harness.host_env(),
        "PATH": f"{BIN}:{harness.SAFE_PATH}",
        "HOME": str(home),
        "MMPKG_SINCE": "10.0.0",
        "MMPKG_EDITIONS": "enterprise",  # all the loopback upstream offers
        "MMPKG_ARCHES": "amd64",
        "EDITION": "enterprise",
        "ARCH": "amd64",
        "MMPKG_API_URL": up.api_url,
        "MMPKG_BASE_URL": up.url,
        "MMPKG_KEYRING": str(upstream_work / "key.asc"),
        "MMPKG_MAINTAINER": MAINTAINER,
        "MMPKG_SIGN_KEY": REPO_KEY,
        "MMPKG_SERVED": str(served),
        "MMPKG_SOURCE": "",
        "MMPKG_SOURCE_DIR": str(CHECKOUT),
        # The checkout's environment already holds mmpkg and the test tier: pip finds them there.
        "MMPKG_PIP_ARGS": "--no-index mmpkg",
        "MMPKG_TEST_PIP_ARGS": "--no-index pytest-docker",
        **LOCAL_TIER,
        "MMPKG_CACHE": str(base / "cache"),
        "GITHUB_TOKEN": "",
        "RUNNER_TEMP": str(base),
        "CI_PROJECT_DIR": str(work),
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


@pytest.fixture(scope="module", params=[GITHUB, GITLAB], ids=["github", "gitlab"])
def published(
    request: pytest.FixtureRequest,
    upstream: tuple[Upstream, Path],
    keys: SigningKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Pipeline:
    # The test job runs the container tier, which needs an engine and, for its local image, root.
    harness.require(*docker_engine.ENGINE_TOOLS, "dockerd", *harness.ROOT_TOOLS)
    up, upstream_work = upstream
    template = Path(request.param)
    pipeline = _pipeline(template, up, upstream_work, keys, tmp_path_factory.mktemp(template.parent.name))
    written = template.read_bytes()
    pipeline.run()
    # The local images went in through the variables, not by a template changed for the run.
    assert template.read_bytes() == written
    return pipeline


@pytest.mark.docker
def test_the_pipeline_publishes_what_upstream_has_and_announces_it(
    published: Pipeline, upstream: tuple[Upstream, Path]
) -> None:
    up, _ = upstream
    served = Repository(published.served)
    assert served.check() == []
    debs = sorted(e.version for e in served.list("stable") if e.format == "deb" and e.name == "mattermost")
    rpms = sorted(e.version for e in served.list("stable") if e.format == "rpm" and e.name == "mattermost")
    assert (debs, rpms) == ([f"{V2}-1", f"{V1}-1"], [f"{V2}-1", f"{V1}-1"])
    # Both are releases of ESR lines (mmpkg/sync/channels.py): the channel rules sent them there too.
    assert (
        sorted(e.version for e in served.list("esr") if e.format == "deb" and e.name == "mattermost") == debs
    )
    # The container tier ran, on the image here, before anything was published.
    tier = "".join(out for step, out in published.outputs.items() if step.startswith("test/"))
    assert re.search(r"^1 passed", tier, re.M), tier
    texts = [body["text"] for path, body in up.posts if path == f"/hooks/{published.template.parent.name}"]
    assert len(texts) == 1 and V1 in texts[0] and V2 in texts[0]
    # The next run reads the served tree and finds nothing lacking.
    published.run(jobs=("releases",))
    assert (published.work / "plan/count").read_text().strip() == "0"


@pytest.mark.docker
@pytest.mark.install
def test_apt_installs_from_the_served_tree(published: Pipeline, root: harness.Root) -> None:
    with _serve(published.served) as url:
        root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
        root.path(keyring.DEB_KEYRING).write_bytes(
            (published.served / "keys/archive-keyring.gpg").read_bytes()
        )
        (snippet,) = client_config(url, "stable", ClientFormat.APT)
        root.write_text(snippet.path, snippet.text)
        root.run("apt-get", "update", "--error-on=any")
        root.apt_install("mattermost")
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V2}-1"
