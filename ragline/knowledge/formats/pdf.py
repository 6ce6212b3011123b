"""PDF (pypdf): the text of each page, pages joined by a blank line; the title from the
PDF's metadata. An encrypted or damaged PDF is an InvalidInput naming the file."""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from ragline.errors import InvalidInput


def pdf_to_text(raw: bytes, label: str) -> tuple[str | None, str]:
    """(metadata title, text) of a PDF: pages joined by a blank line."""
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError as error:
                raise InvalidInput(f"{label}: encrypted PDF ({error})") from None
            if not opened:
                raise InvalidInput(f"{label}: encrypted PDF (cannot be opened without a password)")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info = reader.metadata
        title = info.title if info is not None else None
    except InvalidInput:
        raise
    except FileNotDecryptedError:
        raise InvalidInput(f"{label}: encrypted PDF") from None
    except Exception as error:  # pypdf raises many kinds of error on a damaged file
        raise InvalidInput(f"{label}: not a readable PDF: {error}") from None
    text = "\n\n".join(page for page in pages if page)
    return (title.strip() or None) if isinstance(title, str) else None, text
