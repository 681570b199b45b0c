"""What one pipeline run is given: from command-line flags or a TOML file.

A TOML file uses the flags' names with underscores, e.g.::

    msa = "family.a3m"            # or: sequence = "query.fasta" with databases or server
    engines = ["alphafold2", "openfold3"]   # default ["alphafold2"]; several are compared
    models = [1, 2, 3]
    num_recycles = 3
    model_type = "auto"           # monomer_ptm or multimer; auto: multimer for a complex
    rank_by = "auto"              # plddt, ptm, iptm or multimer
    templates = ["7abc.cif"]      # structure files or folders, or "server" (with server)
    max_template_date = "2021-11-01"
    reference = "7abc.cif"
    out = "runs/family"

A complex gives its chains instead of ``msa``, each with its own MSA and number of copies,
optionally with a paired MSA (else rows are paired by species)::

    chains = [{msa = "A.a3m", copies = 2}, {msa = "B.sto"}]
    paired_msa = "pair.a3m"

Relative paths in the file are relative to the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from foldserve.errors import InputError
from foldserve.fold.alphafold2.template_files import find_template_files
from foldserve.fold.engine import (
    DEFAULT_ENGINE,
    ENGINE_ONLY_OPTIONS,
    check_engine_options,
    parse_engine_names,
)
from foldserve.fold.results import (
    SERVER_TEMPLATES,
    EngineName,
    ModelType,
    PredictOptions,
    RankBy,
    TemplateSource,
)
from foldserve.fold.run_config import check_relax
from foldserve.jobs.input import check_date
from foldserve.msa.search.settings import DEFAULT_MAX_HITS, SearchSettings, ServerMode, Tool

PATH_FIELDS = ("msa", "sequence", "out", "reference", "params_dir", "paired_msa")
#: Where the search step writes the merged MSA, inside ``out``.
SEARCH_FILE = "search.a3m"
#: Where the search step puts the ColabFold server's template hits (``templates = "server"``).
SERVER_TEMPLATES_DIR = "server_templates"
#: ``templates = "server"``: the template hits of the ColabFold server that searched the MSA.
SERVER = SERVER_TEMPLATES
#: The most copies of one chain a complex may hold (AlphaFold has 62 chain ids in all).
MAX_COPIES = 62


@dataclass(frozen=True)
class ChainConfig:
    """One distinct chain of a complex: its MSA (any format foldserve reads) and its copies."""

    msa: Path
    copies: int = 1


def chains_from(value: Any, base: Path | None = None) -> tuple[ChainConfig, ...]:
    """``chains = [{msa = "A.a3m", copies = 1}, …]`` as read from TOML, paths relative to
    ``base``; an error naming the key (``chains[1].copies``) when a chain is not as expected."""
    fix = 'give chains = [{msa = "A.a3m", copies = 1}, {msa = "B.a3m"}]'
    if not isinstance(value, list | tuple) or not value:
        raise InputError("chains is not a list of chains", where="chains", fix=fix)
    chains = []
    for index, item in enumerate(value):
        where = f"chains[{index}]"
        if isinstance(item, ChainConfig):
            chains.append(item)
            continue
        if not isinstance(item, dict):
            raise InputError(f"{item!r} is not a table", where=where, fix=fix)
        unknown = sorted(set(item) - {"msa", "copies"})
        if unknown:
            raise InputError(
                f"unknown setting {unknown[0]!r}", where=where, fix="use only msa and copies"
            )
        msa = item.get("msa")
        if not isinstance(msa, str | Path) or not str(msa):
            raise InputError(
                "no MSA file", where=f"{where}.msa", fix='give msa = "A.a3m" for each chain'
            )
        path = Path(msa)
        chains.append(
            ChainConfig(msa=base / path if base is not None else path, copies=item.get("copies", 1))
        )
    return tuple(chains)


def engine_takes(engine: EngineName, option: str) -> bool:
    """Whether ``engine`` takes the option (not one only another engine has, such as
    AlphaFold2's ``models`` and ``templates``)."""
    return not any(
        option in names for owner, names in ENGINE_ONLY_OPTIONS.items() if owner != engine
    )


def engines_from(value: Any) -> tuple[EngineName, ...]:
    """``engines = ["alphafold2", "openfold3"]`` (or ``"alphafold2,openfold3"``) as read from
    TOML: the engine names, in order."""
    names = value if isinstance(value, list) else [value]
    if not all(isinstance(name, str) for name in names):
        raise InputError(
            f"{value!r} is not a list of engine names",
            where="engines",
            fix='give engines = ["alphafold2", "openfold3"]',
        )
    return parse_engine_names(value, where="engines")


def _check_chain(index: int, chain: ChainConfig) -> None:
    copies = chain.copies
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
        raise InputError(
            f"{copies!r} copies",
            where=f"chains[{index}].copies",
            fix=f"give a whole number of copies from 1 to {MAX_COPIES}",
        )


@dataclass(frozen=True)
class PipelineConfig:
    out: Path
    #: The MSA to fold, or ``sequence`` to search one first (with ``databases`` or ``server``),
    #: or the ``chains`` of a complex (with an optional ``paired_msa``).
    msa: Path | None = None
    sequence: Path | None = None
    chains: tuple[ChainConfig, ...] = ()
    paired_msa: Path | None = None
    databases: tuple[Path, ...] = ()
    search_tool: str = "jackhmmer"
    server: str | None = None
    search_mode: str = "env"
    max_hits: int = DEFAULT_MAX_HITS
    #: The engines that predict, each on the same MSA; with several, their best models are
    #: compared.
    engines: tuple[EngineName, ...] = (DEFAULT_ENGINE,)
    #: AlphaFold2's models.
    models: tuple[int, ...] = (1, 2, 3, 4, 5)
    num_recycles: int = 3
    seed: int = 0
    #: AlphaFold2's network: auto (multimer for a complex), monomer_ptm or multimer.
    model_type: str = "auto"
    #: How models are ranked: auto (multimer confidence for a complex, else pLDDT), plddt, ptm,
    #: iptm or multimer.
    rank_by: str = "auto"
    #: Template structures (files or folders of them), or ``"server"``: the hits of the
    #: ColabFold server the MSA is searched with.
    templates: tuple[Path, ...] | Literal["server"] = ()
    #: YYYY-MM-DD: templates released later are dropped, when their mmCIF gives the date.
    max_template_date: str | None = None
    #: Amber relaxation of the predicted models: none, best or all.
    relax: str = "none"
    reference: Path | None = None
    reference_chain: str | None = None
    msa_format: str = "auto"
    params_dir: Path | None = None
    url: str | None = None
    endpoint_id: str | None = None
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if self.url and self.endpoint_id:
            raise InputError(
                "both an endpoint id and a URL given",
                where="--endpoint-id/--url",
                fix="give one of them",
            )
        given = [self.msa is not None, self.sequence is not None, bool(self.chains)]
        if sum(given) != 1:
            raise InputError(
                "give an MSA, the chains of a complex, or a sequence to search one for"
                + (" (more than one given)" if sum(given) > 1 else ""),
                where="msa/sequence/chains",
                fix="give exactly one of msa (--msa FILE), chains (--msa A --msa B) "
                "and sequence (--sequence FASTA)",
            )
        for index, chain in enumerate(self.chains):
            _check_chain(index, chain)
        if parse_engine_names(self.engines, where="engines") != tuple(self.engines):
            raise InputError(
                f"engines {', '.join(self.engines)} name an engine twice",
                where="engines",
                fix="name each engine once, e.g. alphafold2,openfold3",
            )
        if self.paired_msa is not None and not self.chains:
            raise InputError(
                "a paired MSA without the chains it pairs",
                where="paired_msa",
                fix="give the complex's chains too, or leave out paired_msa",
            )
        self.search_settings()  # validates the search, when there is one
        check_relax(self.relax, where="relax")
        options = self.predict_options()  # validates models, recycles, seed, type, ranking
        if len(self.engines) == 1:
            # With several engines each option is one of theirs; one engine takes none of
            # another's (OpenFold3 no AlphaFold2 models): refused, not ignored.
            check_engine_options(self.engines[0], options)
        self.template_source()  # validates the templates and their date

    @property
    def is_complex_input(self) -> bool:
        """Whether the run folds chains given one by one (a complex, or one chain's copies)."""
        return bool(self.chains)

    @property
    def server_templates(self) -> bool:
        return self.templates == SERVER

    def template_files(self) -> tuple[Path, ...]:
        """Every template structure file ``templates`` names (folders searched), sniffed."""
        if self.templates == SERVER or not self.templates:
            return ()
        return find_template_files(list(self.templates))

    def template_source(self) -> TemplateSource | None:
        """The templates as the predictor takes them; None without. Server hits are in the
        search step's ``SERVER_TEMPLATES_DIR``, fetched with the MSA."""
        if self.max_template_date is not None:
            check_date(self.max_template_date, where="max_template_date")
        if self.templates == SERVER:
            if self.sequence is None or self.server is None:
                raise InputError(
                    "templates = server takes the template hits of ColabFold's MSA server",
                    where="templates",
                    fix="search with sequence and server, or give template files",
                )
            return TemplateSource(
                server_dir=self.out / SERVER_TEMPLATES_DIR,
                max_template_date=self.max_template_date,
            )
        if isinstance(self.templates, str):
            raise InputError(
                f"{self.templates!r} is neither a list of template files nor server",
                where="templates",
                fix='give templates = ["7abc.cif", "templates/"] or templates = "server"',
            )
        if not self.templates:
            if self.max_template_date is not None:
                raise InputError(
                    "there are no templates to date",
                    where="max_template_date",
                    fix="give templates too, or leave out max_template_date",
                )
            return None
        return TemplateSource(files=self.template_files(), max_template_date=self.max_template_date)

    @property
    def msa_input(self) -> Path:
        """The MSA the run checks and folds: the one given, or the search step's (a complex's
        chains: see :attr:`chains`)."""
        return self.msa if self.msa is not None else self.out / SEARCH_FILE

    @property
    def remote(self) -> bool:
        return bool(self.url or self.endpoint_id)

    def search_settings(self) -> SearchSettings | None:
        """How the MSA is searched for; None when an MSA was given."""
        if self.sequence is None:
            return None
        return SearchSettings(
            tool="colabfold-server" if self.server else cast(Tool, self.search_tool),
            databases=self.databases,
            server=self.server,
            mode=cast(ServerMode, self.search_mode),
            max_hits=self.max_hits,
        )

    def predict_options(self, engine: EngineName | None = None) -> PredictOptions:
        """The run's options; for ``engine``, those only another engine takes left at their
        defaults (``models`` are AlphaFold2's: OpenFold3 runs without them)."""
        options = PredictOptions(
            models=self.models,
            num_recycles=self.num_recycles,
            seed=self.seed,
            model_type=cast(ModelType, self.model_type),
            rank_by=cast(RankBy, self.rank_by),
        )
        if engine is None:
            return options
        default = PredictOptions()
        others = {
            option.name: getattr(default, option.name)
            for option in fields(PredictOptions)
            if not engine_takes(engine, option.name)
        }
        return replace(options, **others)


def load_toml(path: Path, overrides: dict[str, Any]) -> PipelineConfig:
    """Read a run file; flags given on the command line (``overrides``) win."""
    try:
        values: dict[str, Any] = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("no such file", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", where=str(path)) from None
    known = {f.name for f in fields(PipelineConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"unknown setting {unknown[0]!r}",
            where=str(path),
            fix=f"use only {', '.join(sorted(known))}",
        )
    for name in PATH_FIELDS:
        if isinstance(values.get(name), str):
            values[name] = path.parent / values[name]
    if isinstance(values.get("models"), list):
        values["models"] = tuple(values["models"])
    if isinstance(values.get("databases"), list):
        values["databases"] = tuple(path.parent / d for d in values["databases"])
    if "chains" in values:
        values["chains"] = chains_from(values["chains"], path.parent)
    if "engines" in values:
        values["engines"] = engines_from(values["engines"])
    templates = values.get("templates")
    if isinstance(templates, list):
        if not all(isinstance(t, str) for t in templates):
            raise InputError(
                "templates holds something other than paths",
                where="templates",
                fix='give templates = ["7abc.cif", "templates/"] or templates = "server"',
            )
        values["templates"] = tuple(path.parent / t for t in templates)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "out" not in values:
        raise InputError("no out", where=str(path), fix="add out = ... or --out")
    try:
        return PipelineConfig(**values)
    except TypeError as exc:
        raise InputError(f"bad setting ({exc})", where=str(path)) from None
