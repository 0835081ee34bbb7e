"""Read and write facts, documents and tasks from files (JSONL, CSV, TOFU JSON, YAML, Hugging Face datasets).

Every bad input raises TaskFormatError with one line naming the file, the line when there is one, and the fix.

A fact needs a question and an answer; without an `id` it gets `<file stem>.<line>` (`forget.3`), so a user's
file of question/answer(/cloze/subject) rows loads as it is.

CSV layout for facts: columns `question,answer` are required (`id` as above); optional `subject,relation,object,cloze,
paraphrased_answer` are plain text; optional `paraphrases,perturbed_answers,neighbours,tags,mcq_options` hold
several values separated by `|` (for `mcq_options` the option equal to `answer` is the correct one).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from obliviate.data.schema import Document, Fact, MultipleChoice, Task, fact_from_dict
from obliviate.data.wmdp import load_wmdp
from obliviate.errors import TaskFormatError

CSV_TEXT = ("id", "question", "answer", "subject", "relation", "object", "cloze", "paraphrased_answer")
CSV_LISTS = ("paraphrases", "perturbed_answers", "neighbours", "tags", "mcq_options")
TOFU_COLUMNS = ("question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question")
FORMATS = ("facts", "tofu", "wmdp")
FACT_SPLITS = ("forget", "retain", "neighbours", "general", "holdout")
DOC_SPLITS = ("forget_documents", "retain_documents", "teach_documents")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"{path}: file not found; check the path (relative paths in a task YAML are relative to the YAML file)")
    return path


def _jsonl_rows(path: Path) -> Iterable[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL file."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TaskFormatError(f"{path}:{lineno}: malformed JSON ({e.msg}); write one JSON object per line") from e
            if not isinstance(row, dict):
                raise TaskFormatError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}; write one object per line")
            yield lineno, row


def _check_unique(facts: list[Fact], path: Path, lines: list[int]) -> list[Fact]:
    seen: dict[str, int] = {}
    for fact, lineno in zip(facts, lines, strict=True):
        if fact.id in seen:
            raise TaskFormatError(f"{path}:{lineno}: duplicate fact id {fact.id!r} (first on line {seen[fact.id]}); give every fact a unique id")
        seen[fact.id] = lineno
    return facts


def _line_id(path: Path, lineno: int) -> str:
    """The id of a fact written without one: the file's stem and its line (unique within the file and across
    split files, stable while the file is unchanged)."""
    return f"{path.stem}.{lineno}"


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split("|") if v.strip())


def _facts_from_csv(path: Path) -> list[Fact]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = [c for c in ("question", "answer") if c not in columns]
        if missing:
            raise TaskFormatError(f"{path}:1: missing column(s) {missing}; the header needs question,answer")
        unknown = [c for c in columns if c not in CSV_TEXT + CSV_LISTS]
        if unknown:
            raise TaskFormatError(f"{path}:1: unknown column(s) {unknown}; allowed: {', '.join(CSV_TEXT + CSV_LISTS)}")
        facts, lines = [], []
        for row in reader:
            lineno = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise TaskFormatError(f"{path}:{lineno}: wrong number of fields ({len(columns)} expected); quote values that contain commas")
            data: dict[str, Any] = {"id": _line_id(path, lineno)}
            data.update({k: row[k].strip() for k in CSV_TEXT if (row.get(k) or "").strip()})
            data.update({k: _split_list(row[k]) for k in CSV_LISTS if k != "mcq_options" and row.get(k, "").strip()})
            options = _split_list(row.get("mcq_options", "") or "")
            fact = fact_from_dict(data, where=f"{path}:{lineno}")
            if options:
                if fact.answer not in options:
                    raise TaskFormatError(f"{path}:{lineno}: mcq_options do not include the answer {fact.answer!r}; add it to the options")
                mcq = MultipleChoice(fact.question, options, options.index(fact.answer))
                fact = fact_from_dict({**fact.to_dict(), "mcq": {"question": mcq.question, "options": list(options),
                                                                 "answer_index": mcq.answer_index}}, f"{path}:{lineno}")
            facts.append(fact)
            lines.append(lineno)
    return _check_unique(facts, path, lines)


def load_facts(path: str | Path) -> list[Fact]:
    """Facts from .jsonl (one `Fact.to_dict()` per line), .json (a list of them) or .csv (see module docstring)."""
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _facts_from_csv(path)
    if suffix == ".json" and path.read_text(encoding="utf-8").lstrip().startswith("["):
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TaskFormatError(f"{path}:{e.lineno}: malformed JSON ({e.msg}); fix the syntax") from e
        facts = [fact_from_dict({"id": _line_id(path, i + 1), **r} if isinstance(r, dict) else {}, where=f"{path} item {i}")
                 for i, r in enumerate(items)]
        return _check_unique(facts, path, list(range(len(facts))))
    if suffix in (".jsonl", ".json"):
        rows = list(_jsonl_rows(path))
        facts = [fact_from_dict({"id": _line_id(path, lineno), **row}, where=f"{path}:{lineno}") for lineno, row in rows]
        return _check_unique(facts, path, [lineno for lineno, _ in rows])
    raise TaskFormatError(f"{path}: unsupported file type {suffix!r} for facts; use .jsonl or .csv")


def save_facts(facts: Iterable[Fact], path: str | Path) -> Path:
    """Write facts as JSONL (readable again by `load_facts`); parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for fact in facts:
            fh.write(json.dumps(fact.to_dict(), ensure_ascii=False) + "\n")
    return path


def load_documents(path: str | Path) -> list[Document]:
    """Documents from .jsonl (`id`, `text`, optional `tags` per line) or .txt (one per blank-line-separated paragraph)."""
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        return [Document(id=f"{path.stem}-{i}", text=" ".join(p.split())) for i, p in enumerate(paragraphs)]
    if suffix not in (".jsonl", ".json"):
        raise TaskFormatError(f"{path}: unsupported file type {suffix!r} for documents; use .jsonl or .txt")
    docs = []
    for lineno, row in _jsonl_rows(path):
        unknown = set(row) - {"id", "text", "tags"}
        if unknown:
            raise TaskFormatError(f"{path}:{lineno}: unknown field(s) {sorted(unknown)}; documents have id, text, tags")
        if not all(isinstance(row.get(k), str) and row[k].strip() for k in ("id", "text")):
            raise TaskFormatError(f"{path}:{lineno}: field 'id' or 'text' is missing or empty; every document needs both")
        docs.append(Document(id=row["id"], text=row["text"], tags=tuple(row.get("tags", ()))))
    return docs


def tofu_facts(rows: Iterable[dict], id_prefix: str, where: str = "", lines: list[int] | None = None) -> list[Fact]:
    """TOFU rows (question, answer, optional paraphrased_answer / perturbed_answer list / paraphrased_question) as Facts.

    Ids are `{id_prefix}.{row index}`; other columns are ignored since TOFU subsets add their own.
    `lines` gives each row's line number for error messages (JSONL); otherwise errors name the item index.
    """
    facts = []
    for i, row in enumerate(rows):
        loc = f"{where or id_prefix}:{lines[i]}" if lines else f"{where or id_prefix} item {i}"
        if not isinstance(row, dict):
            raise TaskFormatError(f"{loc}: expected an object with question and answer, got {type(row).__name__}")
        for col in ("question", "answer"):
            if not isinstance(row.get(col), str) or not row[col].strip():
                raise TaskFormatError(f"{loc}: column {col!r} is missing or empty; TOFU rows need question and answer")
        perturbed = row.get("perturbed_answer") or ()
        if isinstance(perturbed, str):
            perturbed = (perturbed,)
        para_q = row.get("paraphrased_question")
        facts.append(Fact(
            id=f"{id_prefix}.{i}", question=row["question"].strip(), answer=row["answer"].strip(),
            paraphrased_answer=(row.get("paraphrased_answer") or "").strip(),
            perturbed_answers=tuple(str(p).strip() for p in perturbed),
            paraphrases=(para_q.strip(),) if isinstance(para_q, str) and para_q.strip() else (),
            tags=("tofu", id_prefix),
        ))
    return facts


def load_tofu(source: str | Path | Iterable[dict], id_prefix: str | None = None) -> list[Fact]:
    """TOFU facts from a local .json/.jsonl file (a JSON list or one object per line) or a datasets object."""
    if not isinstance(source, (str, Path)):
        return tofu_facts(list(source), id_prefix or "tofu")
    path = _existing(source)
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise TaskFormatError(f"{path}:{e.lineno}: malformed JSON ({e.msg}); fix the syntax") from e
        return tofu_facts(data, id_prefix or path.stem, where=str(path))
    rows = list(_jsonl_rows(path))
    return tofu_facts([r for _, r in rows], id_prefix or path.stem, where=str(path), lines=[n for n, _ in rows])


def load_hf_dataset(name_or_path: str | Path, split: str = "train", *, config: str | None = None,
                    format: str = "tofu", id_prefix: str | None = None, **kwargs: Any) -> list[Fact]:
    """Facts from a Hugging Face dataset: a local data file or folder, or a hub name already in the local cache.

    Runs offline (the hub is never contacted); extra keyword arguments go to `datasets.load_dataset`.

    format "tofu" maps TOFU rows; format "facts" expects columns named like Fact fields.
    """
    if format not in FORMATS:
        raise TaskFormatError(f"{name_or_path}: unknown format {format!r}; use one of {', '.join(FORMATS)}")
    import datasets  # slow import; only needed here

    path = Path(name_or_path)
    builders = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
    if path.suffix.lower() in builders:
        _existing(path)
    import huggingface_hub.constants as hub_constants

    # Offline for the duration of the call: hub names must already be cached (no slow network retries).
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        if path.is_file() and path.suffix.lower() in builders:
            ds = datasets.load_dataset(builders[path.suffix.lower()], data_files=str(path), split="train", **kwargs)
        else:
            ds = datasets.load_dataset(str(name_or_path), config, split=split, **kwargs)
    except Exception as e:  # datasets raises many types; all mean "cannot read it"
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TaskFormatError(f"{name_or_path}: cannot load dataset split {split!r} ({msg}); give a local file or a cached hub name") from e
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
    local = path.suffix.lower() in builders
    prefix = id_prefix or (path.stem if local else f"{str(name_or_path).replace('/', '_')}.{split}")
    if format == "tofu":
        return tofu_facts(ds, prefix, where=str(name_or_path))
    facts = []
    for i, row in enumerate(ds):
        clean = {k: v for k, v in row.items() if v not in (None, "", [])}
        clean.setdefault("id", f"{prefix}.{i}")
        facts.append(fact_from_dict(clean, where=f"{name_or_path} row {i}"))
    return facts


FACT_LOADERS: dict[str, Callable[[Path], list[Fact]]] = {"facts": load_facts, "tofu": load_tofu, "wmdp": load_wmdp}


def _paths(value: Any, base: Path, yaml_path: str) -> list[Path]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise TaskFormatError(f"{yaml_path}: split paths must be strings or lists of strings, got {value!r}")
    return [(base / v) if not Path(v).is_absolute() else Path(v) for v in items]


def load_task(spec: dict | str | Path, base_dir: str | Path | None = None) -> Task:
    """A Task from a YAML file (or the same dict): keys name, format (facts|tofu|wmdp: the layout of the fact
    files), the five splits and documents.

    Paths in a YAML file are relative to it; paths in a dict are relative to `base_dir` (default: cwd).
    """
    if isinstance(spec, dict):
        where, base, data = "task spec", Path(base_dir or "."), spec
    else:
        import yaml

        path = _existing(spec)
        where, base = str(path), Path(base_dir) if base_dir else path.parent
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            at = f":{line + 1}" if line is not None else ""
            raise TaskFormatError(f"{path}{at}: malformed YAML ({getattr(e, 'problem', e)}); fix the syntax") from e
        if not isinstance(data, dict):
            raise TaskFormatError(f"{path}: expected a mapping with name, forget, retain, ...; got {type(data).__name__}")
    allowed = {"name", "format", "description", *FACT_SPLITS, *DOC_SPLITS}
    unknown = set(data) - allowed
    if unknown:
        raise TaskFormatError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    fmt = data.get("format", "facts")
    if fmt not in FORMATS:
        raise TaskFormatError(f"{where}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    default_name = Path(where).stem if where != "task spec" else "task"
    task = Task(name=str(data.get("name") or default_name))
    for split in (*FACT_SPLITS, *DOC_SPLITS):
        if data.get(split) is None:
            continue
        for p in _paths(data[split], base, where):
            items = load_documents(p) if split in DOC_SPLITS else FACT_LOADERS[fmt](p)
            if not items:
                raise TaskFormatError(f"{p}: the {split} split is empty; add at least one entry or drop it from {where}")
            getattr(task, split).extend(items)
    try:
        return task.validate()
    except TaskFormatError as e:
        raise TaskFormatError(f"{where}: {e}") from e
