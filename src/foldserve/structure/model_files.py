"""PDB and mmCIF text for a predicted model, pLDDT in the B-factor column.

The atom records come from AlphaFold's own writers (``alphafold.common.protein``), so files read
the same as DeepMind's and ColabFold's; this module adds the header remarks that say how the
model was made (and, loudly, when it was made with random test weights). A complex is written
as AlphaFold writes one (chains ``A``, ``B``, … with ``TER`` after each in PDB); in mmCIF, copies
of one sequence share an entity (AlphaFold's writer gives every chain its own, its "WARNING 4"),
as in the PDB's own entries. PDB and mmCIF 1.1 hold
printable ASCII only, so anything else in a remark (a Unicode file or row name, a control
character) is written as a ``\\u`` escape; the A3M and JSON outputs keep the original text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gemmi
import numpy as np
import numpy.typing as npt

TEST_WEIGHTS_NOTICE = "made with random TEST WEIGHTS: not a protein structure"


@dataclass(frozen=True)
class ModelCoordinates:
    """Atom37 coordinates with per-residue pLDDT; ``residue_index`` is 1-based (per chain).

    ``chain_index`` gives each residue's 0-based chain (chain ``A`` is 0; None: one chain) and
    ``entities`` each chain's 1-based mmCIF entity (copies of one sequence share one; empty:
    every chain its own).
    """

    aatype: npt.NDArray[np.int32]
    residue_index: npt.NDArray[np.int32]
    positions: npt.NDArray[np.float32]
    atom_mask: npt.NDArray[np.float32]
    plddt: npt.NDArray[np.float32]
    chain_index: npt.NDArray[np.int32] | None = field(default=None, repr=False)
    entities: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        count = len(self.aatype)
        if self.chain_index is not None and len(self.chain_index) != count:
            raise ValueError(f"chain_index has {len(self.chain_index)} residues, aatype {count}")
        if self.entities and len(self.entities) != self.num_chains:
            raise ValueError(f"{len(self.entities)} entities for {self.num_chains} chains")

    @property
    def chains(self) -> npt.NDArray[np.int32]:
        """Each residue's 0-based chain index."""
        if self.chain_index is None:
            return np.zeros(len(self.aatype), dtype=np.int32)
        return self.chain_index.astype(np.int32)

    @property
    def num_chains(self) -> int:
        return int(self.chains.max()) + 1 if len(self.aatype) else 0

    @property
    def chain_entities(self) -> tuple[int, ...]:
        return self.entities or tuple(range(1, self.num_chains + 1))

    def _protein(self) -> object:
        from alphafold.common import protein

        return protein.Protein(
            atom_positions=self.positions,
            aatype=self.aatype,
            atom_mask=self.atom_mask,
            residue_index=self.residue_index,
            chain_index=self.chains,
            b_factors=self.plddt[:, None] * self.atom_mask,
        )


def to_pdb(model: ModelCoordinates, *, remarks: list[str], test_weights: bool) -> str:
    """PDB text: ``REMARK 1`` lines, then AlphaFold's ATOM records."""
    from alphafold.common import protein

    header = "".join(f"REMARK   1 {line[:69]}\n" for line in _header(remarks, test_weights))
    return header + str(protein.to_pdb(model._protein()))


def to_mmcif(model: ModelCoordinates, *, name: str, remarks: list[str], test_weights: bool) -> str:
    """mmCIF text from AlphaFold's writer (``Multimer`` for more than one chain), its entities
    set to ``model``'s, with the remarks as comments after ``data_``."""
    from alphafold.common import protein

    model_type = "Multimer" if model.num_chains > 1 else "Monomer"
    text = str(protein.to_mmcif(model._protein(), file_id=name, model_type=model_type))
    text = _with_entities(text, model.chain_entities)
    comments = "".join(f"# {line}\n" for line in _header(remarks, test_weights))
    first_line_end = text.index("\n") + 1
    return text[:first_line_end] + comments + text[first_line_end:]


def _with_entities(text: str, entities: tuple[int, ...]) -> str:
    """AlphaFold's mmCIF with chain ``i`` (AlphaFold's entity ``i``, 0-based) in entity
    ``entities[i]``: the entity tables list each entity once, its sequence once, and its chains
    (``pdbx_strand_id`` ``A,B``), as the PDB's entries do."""
    document = gemmi.cif.read_string(text)
    block = document.sole_block()
    asym = block.find_mmcif_category("_struct_asym.")
    chain_ids = [gemmi.cif.as_string(row[0]) for row in asym]
    old_entity = {gemmi.cif.as_string(row[1]): entities[i] for i, row in enumerate(asym)}
    if all(old == str(new) for old, new in old_entity.items()):
        return text
    new_entities = sorted(set(entities))
    strands = {
        e: ",".join(c for c, ce in zip(chain_ids, entities, strict=True) if ce == e)
        for e in new_entities
    }
    block.set_mmcif_category(
        "_entity.", {"id": [str(e) for e in new_entities], "type": ["polymer"] * len(new_entities)}
    )
    poly = block.find_mmcif_category("_entity_poly.")
    poly_type = gemmi.cif.as_string(poly[0][1]) if len(poly) else "polypeptide(L)"
    block.set_mmcif_category(
        "_entity_poly.",
        {
            "entity_id": [str(e) for e in new_entities],
            "type": [poly_type] * len(new_entities),
            "pdbx_strand_id": [strands[e] for e in new_entities],
        },
        raw=True,
    )
    # One sequence per entity: its first chain's (copies have the same sequence).
    first_chain: dict[int, str] = {}
    for old, new in old_entity.items():
        first_chain.setdefault(new, old)
    seq: dict[str, list[str]] = {"entity_id": [], "num": [], "mon_id": []}
    for row in block.find_mmcif_category("_entity_poly_seq."):
        old = gemmi.cif.as_string(row[0])
        if first_chain[old_entity[old]] == old:
            seq["entity_id"].append(str(old_entity[old]))
            seq["num"].append(gemmi.cif.as_string(row[1]))
            seq["mon_id"].append(gemmi.cif.as_string(row[2]))
    block.set_mmcif_category("_entity_poly_seq.", seq, raw=True)
    for tag in ("_struct_asym.entity_id", "_ma_target_entity_instance.entity_id"):
        column = block.find_values(tag)
        for i in range(len(column)):
            column[i] = str(old_entity[gemmi.cif.as_string(column[i])])
    targets = [str(e) for e in new_entities]
    block.set_mmcif_category(
        "_ma_target_entity.",
        {"entity_id": targets, "data_id": ["1"] * len(targets), "origin": ["."] * len(targets)},
        raw=True,
    )
    column = block.find_values("_atom_site.label_entity_id")
    for i in range(len(column)):
        column[i] = str(old_entity[column[i]])
    return str(document.as_string())


def _header(remarks: list[str], test_weights: bool) -> list[str]:
    """The provenance lines, led by the test-weights notice when it applies, as printable ASCII."""
    lines = [TEST_WEIGHTS_NOTICE.upper(), *remarks] if test_weights else remarks
    return [printable_ascii(line) for line in lines]


def printable_ascii(text: str) -> str:
    """``text`` with every character outside printable ASCII escaped: ``☃`` → ``\\u2603``."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c.isascii() and c.isprintable() else ascii(c)[1:-1] for c in text)
