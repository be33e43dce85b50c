"""Streaming multipart uploads: each file goes straight to disk, hashed on the way.

A database backup can be several GiB, so the body is never held in memory: chunks
from the request stream are parsed and written to a file in the attachments folder as
they arrive, the SHA-256 and size are computed in the same pass, and the upload is cut
off with 413 at the first byte past the file's limit. The limit is decided when the
file's part begins, from the form fields sent before it (an attachment's ``kind``), so
a kind's own limit applies while streaming whenever the kind comes first. A body that
ends before its closing boundary is refused: a cut-off upload is never kept as a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from supportdesk.errors import InvalidInput, PayloadTooLarge

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 20
HEAD_BYTES = 32

# The most bytes a file may have: a number, or decided from the fields sent before it.
FileLimit = int | Callable[[Mapping[str, str]], int]


@dataclass
class ReceivedFile:
    field_name: str
    filename: str
    declared_type: str
    path: Path
    size: int = 0
    head: bytes = b""
    digest: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class MultipartUpload:
    fields: dict[str, str]
    files: list[ReceivedFile]

    def discard(self) -> None:
        for received in self.files:
            received.discard()

    def only_file(self, field: str) -> ReceivedFile:
        """The one file sent in ``field``; none or several is 422."""
        files = [f for f in self.files if f.field_name == field]
        if len(files) != 1:
            raise InvalidInput(
                f"Send exactly one file in the field `{field}`.", loc=["body", field]
            )
        return files[0]

    def required_field(self, name: str) -> str:
        value = self.fields.get(name)
        if not value:
            raise InvalidInput(f"The field `{name}` is required.", loc=["body", name])
        return value


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)
    file: ReceivedFile | None = None
    handle: BinaryIO | None = None


class _Receiver:
    def __init__(self, folder: Path, max_file_bytes: FileLimit) -> None:
        self.folder = folder
        self.max_file_bytes = max_file_bytes
        self.file_limit = 0
        self.fields: dict[str, str] = {}
        self.files: list[ReceivedFile] = []
        self.part = _Part()
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_name = b""
        self.header_value = b""

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.headers = []

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers.append((self.header_name.lower(), self.header_value))
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        headers = dict(self.headers)
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise InvalidInput("A multipart part has no name.", loc=["body"])
        self.part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            limit = self.max_file_bytes
            self.file_limit = limit if isinstance(limit, int) else limit(self.fields)
            self.part.filename = options[b"filename"].decode("utf-8", "replace")
            self.part.content_type = headers.get(b"content-type", b"").decode("latin-1")
            handle, name = tempfile.mkstemp(prefix="upload-", dir=self.folder)
            self.part.handle = os.fdopen(handle, "wb")
            self.part.file = ReceivedFile(
                field_name=self.part.name,
                filename=self.part.filename,
                declared_type=self.part.content_type,
                path=Path(name),
            )
            self.files.append(self.part.file)
        elif len(self.fields) >= MAX_FIELDS:
            raise InvalidInput("Too many form fields.", loc=["body"])

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        received, handle = self.part.file, self.part.handle
        if received is None or handle is None:
            if len(self.part.data) + len(chunk) > MAX_FIELD_BYTES:
                raise InvalidInput(f"The form field {self.part.name!r} is too long.")
            self.part.data.extend(chunk)
            return
        received.size += len(chunk)
        if received.size > self.file_limit:
            raise PayloadTooLarge(
                f"The file is larger than this upload may be ({self.file_limit} bytes)."
            )
        if len(received.head) < HEAD_BYTES:
            received.head += chunk[: HEAD_BYTES - len(received.head)]
        received.digest.update(chunk)
        handle.write(chunk)

    def on_part_end(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()
            self.part.handle = None
        elif self.part.file is None:
            self.fields[self.part.name] = self.part.data.decode("utf-8", "replace")

    def close(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()


async def receive_multipart(
    content_type: str, stream: AsyncIterator[bytes], folder: Path, max_file_bytes: FileLimit
) -> MultipartUpload:
    """Parse a multipart body, writing its files into ``folder`` (on the same disk as the
    final place, so keeping a file is a rename). On any error nothing stays behind."""
    media_type, params = parse_options_header(content_type)
    if media_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput(
            "The body must be multipart/form-data with a boundary.", loc=["header", "content-type"]
        )
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - one metadata call
    receiver = _Receiver(folder, max_file_bytes)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    upload = MultipartUpload(receiver.fields, receiver.files)
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END:
            raise FormParserError("the body ends before its closing boundary")
    except FormParserError as exc:
        receiver.close()
        upload.discard()
        raise InvalidInput(
            f"The multipart body is malformed or incomplete ({exc}).", loc=["body"]
        ) from exc
    except BaseException:
        receiver.close()
        upload.discard()
        raise
    return upload
