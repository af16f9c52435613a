"""The object store the publish tests write to (tests/support/swift.py): a real Swift with the S3
API, written to with boto3 and read back as apt and dnf read a published repository, anonymously
over plain HTTP."""

from __future__ import annotations

import hashlib
import itertools
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig

from tests.support.swift import SwiftStore, s3_config, swift_store

MiB = 1024 * 1024
_names = itertools.count()
# Anonymous, as apt and dnf are, and straight to the store whatever http_proxy the tests run with.
_anonymous = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def swift() -> Iterator[SwiftStore]:
    with swift_store() as store:
        yield store


@pytest.fixture
def bucket(swift: SwiftStore) -> str:
    """A new public bucket of the test's own."""
    name = f"mmpkg-test-{os.getpid()}-{next(_names)}"
    swift.make_public_bucket(name)
    return name


def fetch(url: str, method: str = "GET") -> tuple[int, Message, bytes]:
    """Status, headers and body of an anonymous request, whatever the status."""
    request = urllib.request.Request(url, method=method)
    try:
        with _anonymous.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def test_an_object_put_with_s3_reads_back_anonymously_with_its_headers(
    swift: SwiftStore, bucket: str
) -> None:
    body = b"Package: mattermost-server\n"
    digest = hashlib.sha256(body).hexdigest()
    swift.client().put_object(
        Bucket=bucket,
        Key="dists/stable/InRelease",
        Body=body,
        CacheControl="max-age=60",
        ContentType="text/plain; charset=utf-8",
        Metadata={"sha256": digest},
    )
    url = f"{swift.public_url(bucket)}/dists/stable/InRelease"
    for method in ("GET", "HEAD"):
        status, headers, got = fetch(url, method)
        assert status == 200, (method, got)
        assert got == (body if method == "GET" else b"")
        assert headers["Cache-Control"] == "max-age=60"
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert headers["Content-Length"] == str(len(body))
        # S3's x-amz-meta-* is Swift's X-Object-Meta-*.
        assert headers["X-Object-Meta-Sha256"] == digest
    head = swift.client().head_object(Bucket=bucket, Key="dists/stable/InRelease")
    assert head["Metadata"] == {"sha256": digest}


def test_a_multipart_upload_reads_back_anonymously(swift: SwiftStore, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB)
    source = tmp_path / "mattermost-server_10.5.1_amd64.deb"
    source.write_bytes(data)
    # 5 MiB, S3's and s3api's smallest part: three parts.
    transfer = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3 = swift.client()
    s3.upload_file(
        str(source),
        bucket,
        f"pool/{source.name}",
        Config=transfer,
        ExtraArgs={"ContentType": "application/vnd.debian.binary-package"},
    )
    # A multipart object's ETag is the MD5 of its parts' MD5s and their number.
    assert s3.head_object(Bucket=bucket, Key=f"pool/{source.name}")["ETag"].endswith('-3"')
    status, headers, got = fetch(f"{swift.public_url(bucket)}/pool/{source.name}")
    assert status == 200
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert headers["Content-Type"] == "application/vnd.debian.binary-package"


def test_a_deleted_object_is_gone(swift: SwiftStore, bucket: str) -> None:
    s3 = swift.client()
    s3.put_object(Bucket=bucket, Key="stale", Body=b"old")
    url = f"{swift.public_url(bucket)}/stale"
    assert fetch(url)[0] == 200
    s3.delete_object(Bucket=bucket, Key="stale")
    assert fetch(url)[0] == 404
    assert fetch(url, "HEAD")[0] == 404
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.head_object(Bucket=bucket, Key="stale")
    assert caught.value.response["Error"]["Code"] == "404"


def test_a_bucket_is_private_unless_made_public(swift: SwiftStore) -> None:
    s3 = swift.client()
    name = f"mmpkg-private-{os.getpid()}-{next(_names)}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="secret", Body=b"no")
    assert fetch(f"{swift.public_url(name)}/secret")[0] == 401
    # An unsigned path-style S3 URL is no way in: Swift's paths begin with /v1/<account>.
    assert fetch(f"{swift.endpoint}/{name}/secret")[0] == 400


def test_a_wrong_secret_is_refused(swift: SwiftStore, bucket: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=swift.endpoint,
        aws_access_key_id=swift.access_key,
        aws_secret_access_key="wrong",
        region_name=swift.region,
        config=s3_config(),
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="intruder", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_the_environment_alone_configures_a_client(
    swift: SwiftStore, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `mmpkg repo publish s3://...` gets from its caller: credentials, region and endpoint."""
    for name, value in swift.env().items():
        monkeypatch.setenv(name, value)
    s3 = boto3.session.Session().client("s3", config=s3_config())
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
