"""``BlockBuilder``: an ``MsaBuilder`` that also takes a block of records in one step.

Adding rows one at a time costs about a microsecond of Python per row, more than Easel's C
reader spends on a whole row. A block of well-formed rows is projected here in one step
(:func:`foldserve.msa.scan_project.project_block`) and appended to the builder's storage. Every
other row goes through ``MsaBuilder.add`` as before: the rows up to the query, and any block
that holds an annotation row, an empty row, a row past the limits, an invalid character or a
row of the wrong width. So every check and every message stays the builder's own, and the fast
path only has to recognise that a block needs none of them.

When a file has several problems, which of them is reported can depend on where the blocks
fall (the builder checks a chunk of rows at a time); each message is the builder's.

It extends ``MsaBuilder`` (and appends to its storage) rather than living in it because the
builder also serves the Stockholm and Easel readers, whose rows arrive one at a time.
"""

from __future__ import annotations

from foldserve.msa.builder import ANNOTATION_ROWS, MsaBuilder, Projected
from foldserve.msa.scan_block import RecordBlock
from foldserve.msa.scan_project import QueryColumns, project_block


class BlockBuilder(MsaBuilder):
    """``MsaBuilder`` with ``add_block``; ``add`` and ``finish`` are the builder's own."""

    _columns: QueryColumns | None = None  # the query's, once it is known

    def add_block(self, block: RecordBlock) -> None:
        """Add the records of ``block``, in order, as ``add`` would one by one."""
        if self._query is None:
            block = self._add_until_query(block)
        if not len(block):
            return
        projected = self._project(block)
        if projected is None:
            for row in block.rows():
                self.add(row)
            return
        self._flush()  # rows added one at a time come first
        residues, deletions, insertions = projected
        self._rows += len(block)
        self._names.extend(block.names)
        self._descriptions.extend(block.descriptions)
        self._insertions.extend(insertions)
        assert self._store is not None  # made by the flush that followed the query
        self._store.append(residues, deletions)

    def _add_until_query(self, block: RecordBlock) -> RecordBlock:
        """Add rows one at a time until the query is among them; the rows left."""
        for taken, row in enumerate(block.rows(), start=1):
            self.add(row)
            if self._query is not None:
                self._flush()  # sizes the storage from the query
                return block.tail(taken)
        return block.tail(len(block))

    def _project(self, block: RecordBlock) -> Projected | None:
        """The block projected in one step, or None when a row needs the builder's checks."""
        if self.limits is not None and self._rows + len(block) > self.limits.max_rows:
            return None
        if not block.lengths.all() or not ANNOTATION_ROWS.isdisjoint(block.names):
            return None
        if self._columns is None:
            self._columns = QueryColumns.of(self._width, self._keep)
        return project_block(
            block.sequences,
            block.lengths,
            charset=block.charset,
            rule=self.rule,
            query=self._columns,
        )
