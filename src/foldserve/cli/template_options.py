"""``--templates PATH… | server`` and ``--max-template-date``, checked before any work, and
the server's template hits fetched after the MSA search (``colabfold_batch --templates``)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from foldserve.cli.console import err
from foldserve.cli.search_run import following_search
from foldserve.errors import InputError
from foldserve.fold.results import TemplateSource
from foldserve.fold.template_files import find_template_files
from foldserve.msa.search.settings import SearchSettings

#: ``--templates server``: the ColabFold server's own template hits.
SERVER = "server"


@dataclass(frozen=True)
class TemplateRequest:
    """What the flags ask for: the user's structure files, or the server's hits."""

    files: tuple[Path, ...] = ()
    from_server: bool = False
    max_template_date: str | None = None

    def source(self) -> TemplateSource:
        """The user's files as the predictor takes them (server hits: :func:`fetch_from_server`)."""
        return TemplateSource(files=self.files, max_template_date=self.max_template_date)


def template_request(
    values: Sequence[str] | None, max_template_date: str | None, *, server: bool
) -> TemplateRequest | None:
    """The templates ``--templates`` asks for, every file found and sniffed; ``server`` is
    whether the MSA comes from ColabFold's server (``--server``), which ``--templates server``
    needs."""
    if max_template_date is not None:
        check_date(max_template_date)
    if not values:
        if max_template_date is not None:
            raise InputError(
                "there are no templates to date",
                where="--max-template-date",
                fix="give --templates too, or leave out --max-template-date",
            )
        return None
    if SERVER in values:
        if len(values) > 1:
            raise InputError(
                "`server` and template files given together",
                where="--templates",
                fix="use the server's templates or your own files, not both (as ColabFold)",
            )
        if not server:
            raise InputError(
                "`--templates server` takes the template hits of ColabFold's MSA server",
                where="--templates",
                fix="search with --sequence Q.fasta --server URL, or give template files",
            )
        return TemplateRequest(from_server=True, max_template_date=max_template_date)
    files = find_template_files([Path(value) for value in values])
    return TemplateRequest(files=files, max_template_date=max_template_date)


def check_date(text: str) -> None:
    """Refuse a ``--max-template-date`` that is not a YYYY-MM-DD date."""
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{text!r} is not a date",
            where="--max-template-date",
            fix="write it as YYYY-MM-DD, e.g. 2021-11-01",
        ) from None
    if len(text) != len("YYYY-MM-DD"):
        raise InputError(
            f"{text!r} is not written as YYYY-MM-DD",
            where="--max-template-date",
            fix="write it as YYYY-MM-DD, e.g. 2021-11-01",
        )


def fetch_from_server(
    request: TemplateRequest, sequences: Sequence[str], settings: SearchSettings, into: Path
) -> TemplateSource:
    """The server's template hits for ``sequences`` (the distinct chains), fetched into
    ``into`` with progress on stderr, as the predictor takes them."""
    from foldserve.msa.search.colabfold_server import (
        fetch_server_templates,
        server_template_hits,
    )

    with following_search(err(highlight=False)) as show:
        hits = server_template_hits(sequences, settings, progress=show)
        fetch_server_templates(settings, hits, into, progress=show)
    return TemplateSource(server_dir=into, max_template_date=request.max_template_date)
