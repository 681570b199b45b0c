"""``--templates PATH… | server`` and ``--max-template-date``, checked before any work, and
the server's template hits fetched after the MSA search (``colabfold_batch --templates``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from foldserve.cli.console import err
from foldserve.cli.search_run import following_search
from foldserve.errors import InputError
from foldserve.fold.alphafold2.template_files import find_template_files
from foldserve.fold.results import SERVER_TEMPLATES, TemplateSource
from foldserve.jobs.input import check_date
from foldserve.msa.search.settings import SearchSettings

SERVER = SERVER_TEMPLATES


@dataclass(frozen=True)
class TemplateRequest:
    """What the flags ask for: the user's structure files, or the server's hits."""

    files: tuple[Path, ...] = ()
    from_server: bool = False
    max_template_date: str | None = None

    def source(self) -> TemplateSource:
        """The user's files as the predictor takes them (server hits: :func:`fetch_from_server`)."""
        return TemplateSource(files=self.files, max_template_date=self.max_template_date)


#: Where ``--templates server`` has no server search to take hits from.
SEARCH_WITH_SERVER = "search with --sequence Q.fasta --server URL, or give template files"


def template_request(
    values: Sequence[str] | None,
    max_template_date: str | None,
    *,
    server: bool,
    server_fix: str = SEARCH_WITH_SERVER,
) -> TemplateRequest | None:
    """The templates ``--templates`` asks for, every file found and sniffed; ``server`` is
    whether the MSA comes from ColabFold's server (``--server``), which ``--templates server``
    needs (``server_fix`` says what to do instead)."""
    if max_template_date is not None:
        check_date(max_template_date, where="--max-template-date")
    if not values:
        if max_template_date is not None:
            raise InputError(
                "there are no templates to date",
                where="--max-template-date",
                fix="give --templates too, or leave out --max-template-date",
            )
        return None
    asked = server_or_files(values)
    if asked == SERVER:
        if not server:
            raise InputError(
                "`--templates server` takes the template hits of ColabFold's MSA server",
                where="--templates",
                fix=server_fix,
            )
        return TemplateRequest(from_server=True, max_template_date=max_template_date)
    assert asked is not None
    files = find_template_files(asked)
    return TemplateRequest(files=files, max_template_date=max_template_date)


def server_or_files(values: Sequence[str] | None) -> tuple[Path, ...] | Literal["server"] | None:
    """``--templates`` as given: ``server`` alone, or the files and folders; None for none."""
    if not values:
        return None
    if SERVER in values:
        if len(values) > 1:
            raise InputError(
                "`server` and template files given together",
                where="--templates",
                fix="use the server's templates or your own files, not both (as ColabFold)",
            )
        return SERVER
    return tuple(Path(value) for value in values)


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
