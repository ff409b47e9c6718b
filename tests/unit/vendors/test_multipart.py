"""Strict multipart: exactly what the SDKs send is read; everything parsers split differently is refused."""

import io

import pytest

from tollgate.vendors import multipart
from tollgate.vendors.wire import Ambiguous

B = "a1b2c3d4e5f6"


def body(*parts: bytes, boundary: str = B, end: bytes = b"\r\n") -> bytes:
    d = f"--{boundary}".encode()
    return d + b"\r\n" + (b"\r\n" + d + b"\r\n").join(parts) + b"\r\n" + d + b"--" + end


FIELD = b'Content-Disposition: form-data; name="purpose"\r\n\r\ndispute_evidence'
FILE = (
    b'Content-Disposition: form-data; name="file"; filename="receipt.pdf"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n%PDF-1.4 \x00\xff\r\n binary"
)


def test_what_stripe_python_sends_is_read_field_by_field() -> None:
    from stripe._multipart_data_generator import MultipartDataGenerator

    gen = MultipartDataGenerator()
    upload = io.BytesIO(b"%PDF-1.4 evidence\r\n--not-the-boundary")
    upload.name = "/tmp/evidence.pdf"
    gen.add_params({"purpose": "dispute_evidence", "file": upload, "file_link_data": {"create": True}})
    mp = multipart.parse(
        gen.get_post_data(), multipart.boundary_of(f"multipart/form-data; boundary={gen.boundary}")
    )
    assert mp.fields == [("purpose", "dispute_evidence"), ("file_link_data[create]", "true")]
    assert mp.file == multipart.FilePart("file", "/tmp/evidence.pdf", "application/octet-stream", 37)


def test_a_well_formed_body_gives_its_fields_and_one_file() -> None:
    mp = multipart.parse(body(FIELD, FILE), B)
    assert mp.fields == [("purpose", "dispute_evidence")]
    assert mp.file is not None and (mp.file.name, mp.file.filename, mp.file.size) == (
        "file",
        "receipt.pdf",
        20,
    )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"preamble\r\n" + body(FIELD), "no preamble"),
        (body(FIELD, end=b"\r\nepilogue"), "no epilogue"),
        (body(FIELD)[:-2], "no epilogue"),
        (body(FIELD, FILE, FILE), "only one file"),
        (body(FIELD.replace(b"dispute_evidence", b"x--" + B.encode() + b"y"), FILE), "appears inside a part"),
        (body(b"Content-Transfer-Encoding: base64\r\n" + FIELD), "not accepted"),
        (
            body(
                FIELD.replace(
                    b"Content-Disposition", b"Content-Disposition: form-data\r\nContent-Disposition"
                )
            ),
            "twice",
        ),
        (body(b' Content-Disposition: form-data; name="purpose"\r\n\r\nx'), "one line"),
        (
            body(b"Content-Disposition: form-data; name=\"purpose\"; filename*=UTF-8''a.pdf\r\n\r\nx"),
            "no other parameter",
        ),
        (body(b'Content-Disposition: form-data; name="pur\\"pose"\r\n\r\nx'), "no other parameter"),
        (body(b'Content-Disposition: attachment; name="purpose"\r\n\r\nx'), "form-data"),
        (
            body(b'Content-Disposition: form-data; name="purpose"\r\nContent-Type: text/plain\r\n\r\nx'),
            "only a file part",
        ),
        (body(b'Content-Disposition: form-data; name="purpose"\r\n\r\n\xff'), "not UTF-8"),
        (body(b'Content-Disposition: form-data; name="purpose"\r\nx'), "empty line"),
    ],
)
def test_bodies_parsers_would_split_differently_are_refused(raw: bytes, words: str) -> None:
    with pytest.raises(Ambiguous, match=words):
        multipart.parse(raw, B)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed; boundary=abc",
        "multipart/form-data",
        "multipart/form-data; boundary=abc; charset=utf-8",
        'multipart/form-data; boundary="abc "',
        "multipart/form-data; boundary=" + "a" * 71,
        "multipart/form-data; boundary=abc; boundary=abd",
    ],
)
def test_only_one_plain_boundary_is_accepted(content_type: str) -> None:
    with pytest.raises(Ambiguous):
        multipart.boundary_of(content_type)


def test_too_many_parts_are_refused() -> None:
    with pytest.raises(Ambiguous, match="at most"):
        multipart.parse(body(*[FIELD] * (multipart.MAX_PARTS + 1)), B)
