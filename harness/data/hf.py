"""The ``huggingface`` layout: a 🤗 dataset saved with ``save_to_disk``, its Parquet shards,
or a hub repository already in the local hub cache.

``root`` is one of:

- a folder written by ``Dataset.save_to_disk`` (it holds ``state.json``), or by
  ``DatasetDict.save_to_disk`` (``dataset_dict.json`` and one folder per split: ``split``
  picks one, required when there are several);
- a ``.parquet`` file, a folder of them (recursively, sorted), or a glob;
- a hub repository id, ``hf://datasets/owner/name`` (in a config file, where a bare
  ``owner/name`` would be read as a path relative to the file), or ``owner/name`` that is not a path:
  its snapshot is looked up in the local hub cache only (``local_files_only``, as with
  ``HF_HUB_OFFLINE=1``; ``cache_dir`` overrides ``HF_HUB_CACHE``), and its Parquet files are
  read as above (``split`` keeps the files of that split: ``<split>-00000-of-00001.parquet``
  or a ``<split>/`` folder, the hub's two conventions). A repository without Parquet files
  is refused; nothing is downloaded.

Columns: ``image_column`` (an ``Image`` feature, its ``bytes`` or else its ``path``; or a
binary column), ``label_column`` (0/1, booleans, strings or a ``ClassLabel``, whose names
are used; names other than the well-known ``real``/``fake``, ... need ``label_map``, see
:mod:`harness.data.labels`) and optionally ``generator_column`` (a string or ``ClassLabel``;
without it every fake gets the ``generator`` option, else the dataset's name). As in
``binary-folders``, a real keeps the generator of its row as ``subset``.

A row's sample path is ``<saved folder or shard>::<column>/<row>`` (``row`` counts from 0
in that folder or shard); :mod:`harness.data.sources` reads it through the container kinds
defined here, so workers read one row, not the dataset, and ``sample_id`` is the sha256 of
the image bytes, the same as the file's in a folder.
"""
from __future__ import annotations

import bisect
import glob
import hashlib
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from harness.api import ConfigError, LayoutSpec, Sample
from harness.data import sources
from harness.data.decode import probe_bytes
from harness.data.labels import label_of
from harness.hookspecs import hookimpl

__all__ = ["SavedDataset", "ParquetShard", "read_huggingface", "resolve_sources", "row_path"]

_REPO = r"([A-Za-z0-9][\w.-]*/[\w.-]+)"
_REPO_ID = re.compile(rf"^{_REPO}$")
#: ``hf://datasets/owner/name``, also after a config made it a path (``/cfg/dir/hf:/datasets/...``)
_HUB_URL = re.compile(rf"(?:^|/)hf:/+datasets/{_REPO}/?$")
_SPLIT_FILE = re.compile(r"^(?P<split>[A-Za-z0-9_.]+?)-\d{5}-of-\d{5}$")


def row_path(source: str | Path, column: str, row: int) -> str:
    return sources.member_path(source, f"{column}/{row}")


def _parse_member(member: str) -> tuple[str, int]:
    column, _, row = member.rpartition("/")
    if not column or not row.isdigit():
        raise KeyError(member)
    return column, int(row)


def _image_bytes(value: Any, folder: Path) -> bytes:
    """The bytes an image cell holds: ``{"bytes", "path"}`` (``Image`` feature) or raw bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict) and value.get("bytes") is not None:
        return value["bytes"]
    if isinstance(value, dict) and value.get("path"):
        path = Path(value["path"])
        return (path if path.is_absolute() else folder / path).read_bytes()
    raise OSError(f"the image cell holds neither bytes nor a path ({type(value).__name__})")


def _datasets() -> Any:
    """The 🤗 ``datasets`` package, an optional dependency."""
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError("the huggingface layout needs the optional package datasets "
                          "(pip install 'exifbench[hf]')") from exc
    return datasets


def _image_columns(features: Any) -> list[str]:
    Image = _datasets().Image
    return [k for k, v in features.items() if isinstance(v, Image)]


class _Rows(sources.Container):
    """A container whose members are ``<image column>/<row>`` (subclasses give the columns,
    the row count and ``features``)."""

    features: Any

    @property
    def num_rows(self) -> int:
        raise NotImplementedError

    def column_names(self) -> list[str]:
        raise NotImplementedError

    def members(self) -> list[str]:
        return [f"{c}/{i}" for c in _image_columns(self.features) for i in range(self.num_rows)]

    def __contains__(self, member: str) -> bool:
        try:
            column, row = _parse_member(member)
        except KeyError:
            return False
        return column in self.column_names() and row < self.num_rows

    def _check(self, member: str) -> tuple[str, int]:
        column, row = _parse_member(member)
        if column not in self.column_names() or row >= self.num_rows:
            raise KeyError(member)
        return column, row


class SavedDataset(_Rows):
    """A folder written by ``Dataset.save_to_disk``, memory-mapped by ``datasets``."""

    kind = "hf-saved"

    def __init__(self, path: Path):
        super().__init__(path)
        ds = _datasets().load_from_disk(str(path))
        if not hasattr(ds, "features") or not hasattr(ds, "data"):
            raise ValueError("a DatasetDict; name one of its split folders")
        self.features = ds.features
        self._table = ds.data.table  # the memory-mapped Arrow table, rows in the saved order

    @classmethod
    def claims(cls, path: Path) -> bool:
        return path.is_dir() and (path / "state.json").is_file()

    @property
    def num_rows(self) -> int:
        return self._table.num_rows

    def column_names(self) -> list[str]:
        return self._table.column_names

    def batches(self, columns: list[str]) -> Iterator[Any]:
        yield from self._table.select(columns).to_batches(max_chunksize=256)

    def read(self, member: str) -> bytes:
        column, row = self._check(member)
        return _image_bytes(self._table.column(column)[row].as_py(), self.path)


class ParquetShard(_Rows):
    """One Parquet file; a row is read from its row group (the last group read is kept)."""

    kind = "parquet"

    def __init__(self, path: Path):
        super().__init__(path)
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(path)
        self.features = _datasets().Features.from_arrow_schema(self._file.schema_arrow)
        meta = self._file.metadata
        self._starts = [0]
        for i in range(meta.num_row_groups):
            self._starts.append(self._starts[-1] + meta.row_group(i).num_rows)
        self._lock = threading.Lock()
        self._group: tuple[int, str, Any] | None = None

    @classmethod
    def claims(cls, path: Path) -> bool:
        return path.is_file() and path.name.lower().endswith(".parquet")

    @property
    def num_rows(self) -> int:
        return self._starts[-1]

    def column_names(self) -> list[str]:
        return self._file.schema_arrow.names

    def batches(self, columns: list[str]) -> Iterator[Any]:
        yield from self._file.iter_batches(batch_size=256, columns=columns)

    def read(self, member: str) -> bytes:
        column, row = self._check(member)
        g = bisect.bisect_right(self._starts, row) - 1
        with self._lock:
            if self._group is None or self._group[:2] != (g, column):
                self._group = (g, column, self._file.read_row_group(g, columns=[column]).column(0))
            cell = self._group[2][row - self._starts[g]].as_py()
        return _image_bytes(cell, self.path.parent)


def _hub_snapshot(repo_id: str, revision: str | None, cache_dir: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, cache_dir=cache_dir,
                                      local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError) as exc:
        raise ConfigError(f"huggingface: {repo_id!r} is neither a path nor a dataset in the local hub cache "
                          f"({cache_dir or 'HF_HUB_CACHE'}); on a machine with network, "
                          f"`hf download {repo_id} --repo-type dataset` puts it there") from exc


def _split_of(shard: Path) -> str | None:
    m = _SPLIT_FILE.match(shard.stem)
    return m.group("split") if m else None


def _keep_split(shards: list[Path], split: str | None) -> list[Path]:
    if split is None:
        return shards
    return [s for s in shards if _split_of(s) == split or split in s.parent.parts or s.stem == split]


def _saved_split(root: Path, split: str | None) -> list[Path]:
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "state.json").is_file())
    if split is None and len(splits) == 1:
        split = splits[0]
    if split not in splits:
        raise ConfigError(f"huggingface: {str(root)!r} is a saved DatasetDict with splits {splits}; "
                          f"set split to one of them (got {split!r})")
    return [root / split]


def resolve_sources(root: str | Path, split: str | None = None, revision: str | None = None,
                    cache_dir: str | None = None) -> list[Path]:
    """The saved folders or Parquet shards ``root`` names (see the module docstring)."""
    text = str(root)
    path = Path(text).expanduser()
    if path.is_dir() and (path / "state.json").is_file():
        return [path]
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        return _saved_split(path, split)
    if path.is_file():
        return [path]
    if path.is_dir():
        shards = sorted(path.rglob("*.parquet"))
    elif glob.has_magic(text):
        shards = sorted(Path(p) for p in glob.glob(text, recursive=True))
    elif (hub := _HUB_URL.search(text.strip()) or (_REPO_ID.match(text.strip()) if not path.exists() else None)):
        snapshot = _hub_snapshot(hub.group(1), revision, cache_dir)
        shards = sorted(snapshot.rglob("*.parquet"))
        if not shards:
            raise ConfigError(f"huggingface: the cached snapshot of {text!r} ({snapshot}) has no Parquet files")
    else:
        raise ConfigError(f"huggingface: {text!r} is no saved dataset, Parquet file or folder, nor a hub id")
    kept = _keep_split(shards, split)
    if not kept:
        raise ConfigError(f"huggingface: no Parquet files in {text!r}" + (f" for split {split!r}" if split else ""))
    return kept


def _names(features: Any, column: str | None) -> list[str] | None:
    feature = features.get(column) if column else None
    return list(feature.names) if isinstance(feature, _datasets().ClassLabel) else None


def _check_columns(source: Path, features: Any, columns: Mapping[str, str | None]) -> None:
    for option, column in columns.items():
        if column is not None and column not in features:
            raise ConfigError(f"huggingface: {source} has no column {column!r} ({option}); "
                              f"its columns: {sorted(features)}")


def _rows(box: Any, image_column: str, label_column: str, generator_column: str | None) -> Iterator[tuple]:
    """(row, image cell, raw label, raw generator), names of ``ClassLabel`` values applied."""
    label_names, gen_names = _names(box.features, label_column), _names(box.features, generator_column)
    columns = [c for c in (image_column, label_column, generator_column) if c]
    row = 0
    for batch in box.batches(list(dict.fromkeys(columns))):
        data = batch.to_pydict()
        for i in range(batch.num_rows):
            label = data[label_column][i]
            gen = data[generator_column][i] if generator_column else None
            yield (row, data[image_column][i], label_names[label] if label_names and label is not None else label,
                   gen_names[gen] if gen_names and gen is not None else gen)
            row += 1


def read_huggingface(root: str | Path, dataset: str = "", image_column: str = "image", label_column: str = "label",
                     generator_column: str | None = None, label_map: Mapping[str, int] | None = None,
                     generator: str | None = None, families: Mapping[str, str] | None = None,
                     split: str | None = None, generators: Iterable[str] | None = None,
                     revision: str | None = None, cache_dir: str | None = None) -> list[Sample]:
    """Samples of a saved 🤗 dataset, Parquet shards or a cached hub dataset (module docstring)."""
    paths = resolve_sources(root, split, revision, cache_dir)
    dataset = dataset or sources.root_name(str(root).rstrip("/").split("/")[-1]) or "huggingface"
    families, wanted = dict(families or {}), set(generators) if generators else None
    samples = []
    for source in paths:
        try:
            box = sources.container(source)
        except ConfigError as exc:
            raise ConfigError(f"huggingface: {exc}") from exc
        _check_columns(source, box.features, {"image_column": image_column, "label_column": label_column,
                                              "generator_column": generator_column})
        for row, cell, raw_label, raw_gen in _rows(box, image_column, label_column, generator_column):
            where = f"huggingface {row_path(source, image_column, row)}"
            label = label_of(raw_label, label_map, where=where)
            gen = str(raw_gen) if raw_gen not in (None, "") else generator or dataset
            if wanted is not None and gen not in wanted:
                continue
            try:
                data = _image_bytes(cell, source if source.is_dir() else source.parent)
            except OSError:
                data = b""  # the engine reads the row again and records why it fails
            info = probe_bytes(data)
            samples.append(Sample(
                sample_id=hashlib.sha256(data).hexdigest(), path=row_path(source, image_column, row), label=label,
                dataset=dataset, generator=gen if label else "real",
                family=families.get(gen, "unknown") if label else "camera",
                split=split or _split_of(source) or "test", subset=gen, **info))
    if not samples:
        raise ConfigError(f"huggingface: no rows in {str(root)!r}")
    return samples


@hookimpl
def exifbench_dataset_layouts() -> list[LayoutSpec]:
    return [LayoutSpec("huggingface", read_huggingface, "a saved 🤗 dataset, its Parquet shards, or a cached hub id")]
