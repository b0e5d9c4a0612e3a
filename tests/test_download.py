"""Official-archive download: checksum verified, nothing half-written (file:// URLs, no network)."""

import hashlib

import pytest

from llmrec.data.download import download_archive
from llmrec.errors import DataError


def test_download_verifies_md5_and_caches(tmp_path):
    src = tmp_path / "ml-toy.zip"
    src.write_bytes(b"archive bytes")
    md5 = hashlib.md5(b"archive bytes").hexdigest()
    dest = tmp_path / "cache"
    got = download_archive(src.as_uri(), md5=md5, dest_dir=dest)
    assert got.read_bytes() == b"archive bytes"
    src.unlink()  # a cached, verified copy is reused without the network
    assert download_archive(src.as_uri(), md5=md5, dest_dir=dest) == got


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "ml-toy.zip"
    src.write_bytes(b"tampered")
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch"):
        download_archive(src.as_uri(), md5="0" * 32, dest_dir=dest)
    assert not dest.exists() or not any(dest.iterdir())


def test_download_failure_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="download failed"):
        download_archive((tmp_path / "absent.zip").as_uri(), dest_dir=tmp_path / "cache")
