"""Loaders: every file format, and every bad input raising a one-line TaskFormatError naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obliviate.data.io import (
    load_documents,
    load_facts,
    load_hf_dataset,
    load_task,
    load_tofu,
    save_facts,
)
from obliviate.data.people import people_task
from obliviate.errors import TaskFormatError

FIXTURES = Path(__file__).parent / "fixtures"


def raises(fn, *args, match: str, **kw) -> str:
    """Assert a one-line TaskFormatError containing `match` (a plain substring)."""
    with pytest.raises(TaskFormatError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert match in msg, msg
    return msg


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- good inputs ----------------------------------------------------------------------------------------------


def test_jsonl_round_trip(tmp_path):
    facts = people_task("test").forget
    path = save_facts(facts, tmp_path / "sub" / "facts.jsonl")
    assert load_facts(path) == facts


def test_csv_facts():
    facts = load_facts(FIXTURES / "facts.csv")
    assert [f.id for f in facts] == ["c1", "c2", "c3"]
    c1 = facts[0]
    assert c1.paraphrases == ("In which city was Orla Venn born?", "What is Orla Venn's birthplace?")
    assert c1.perturbed_answers == ("Istrel", "Brisca", "Jorvale") and c1.neighbours == ("c2",)
    assert c1.mcq is not None and c1.mcq.options[c1.mcq.answer_index] == "Kelmarsh"
    assert facts[1].mcq is None and facts[1].paraphrases == ()
    assert facts[2].question == "Which company employs Orla Venn, the cartographer?"


def test_documents_txt_and_jsonl(tmp_path):
    docs = load_documents(FIXTURES / "task" / "forget_docs.txt")
    assert len(docs) == 2 and docs[0].id == "forget_docs-0" and "was born in" in docs[0].text
    path = write(tmp_path / "docs.jsonl", '{"id": "d1", "text": "Some text."}\n\n{"id": "d2", "text": "More.", "tags": ["x"]}\n')
    docs = load_documents(path)
    assert [d.id for d in docs] == ["d1", "d2"] and docs[1].tags == ("x",)


def test_tofu_json_list_and_jsonl():
    facts = load_tofu(FIXTURES / "tofu_mini.json")
    assert [f.id for f in facts] == ["tofu_mini.0", "tofu_mini.1", "tofu_mini.2"]
    assert len(facts[0].perturbed_answers) == 3 and facts[0].paraphrased_answer
    retain = load_tofu(FIXTURES / "tofu_retain.jsonl")
    assert retain[1].paraphrases == ("When did Brenvik Osslar's debut novel come out?",)
    assert retain[0].perturbed_answers == () and retain[0].paraphrased_answer == ""


def test_tofu_from_rows_object():
    rows = [{"question": "Q?", "answer": "A.", "perturbed_answer": ["B.", "C."], "extra": 1}]
    facts = load_tofu(rows, id_prefix="mem")
    assert facts[0].id == "mem.0" and facts[0].perturbed_answers == ("B.", "C.")


def test_hf_dataset_local_files(tmp_path):
    tofu = load_hf_dataset(FIXTURES / "tofu_mini.json", cache_dir=str(tmp_path))
    assert tofu == load_tofu(FIXTURES / "tofu_mini.json")
    facts = load_hf_dataset(FIXTURES / "task" / "forget.jsonl", format="facts", cache_dir=str(tmp_path))
    assert facts == load_facts(FIXTURES / "task" / "forget.jsonl")


def test_task_yaml():
    task = load_task(FIXTURES / "task" / "task.yaml")
    assert task.name == "mini"
    assert len(task.forget) == 3 and len(task.retain) == 3 and len(task.neighbours) == 2 and len(task.holdout) == 2
    assert len(task.forget_documents) == 2


def test_task_dict_tofu_and_lists():
    spec = {"format": "tofu", "forget": "tofu_mini.json", "retain": ["tofu_retain.jsonl"]}
    task = load_task(spec, base_dir=FIXTURES)
    assert task.name == "task" and len(task.forget) == 3 and len(task.retain) == 2


# ---- bad inputs -----------------------------------------------------------------------------------------------


def test_missing_files(tmp_path):
    raises(load_facts, tmp_path / "nope.jsonl", match="nope.jsonl: file not found")
    raises(load_documents, tmp_path / "nope.txt", match="nope.txt: file not found")
    raises(load_tofu, tmp_path / "nope.json", match="nope.json: file not found")
    raises(load_hf_dataset, tmp_path / "nope.json", match="nope.json: file not found")
    raises(load_task, tmp_path / "nope.yaml", match="nope.yaml: file not found")
    yaml_path = write(tmp_path / "t.yaml", "forget: missing.jsonl\n")
    raises(load_task, yaml_path, match="missing.jsonl: file not found")


def test_jsonl_errors_name_line(tmp_path):
    good = json.dumps({"id": "a", "question": "Q?", "answer": "A"})
    raises(load_facts, write(tmp_path / "bad.jsonl", good + "\n{oops\n"), match="bad.jsonl:2: malformed JSON")
    raises(load_facts, write(tmp_path / "list.jsonl", good + "\n\n[1, 2]\n"), match="list.jsonl:3: expected a JSON object")
    raises(load_facts, write(tmp_path / "miss.jsonl", '{"id": "a", "question": "Q?"}\n'), match="miss.jsonl:1: field 'answer'")
    raises(load_facts, write(tmp_path / "unk.jsonl", '{"id": "a", "question": "Q", "answer": "A", "colour": 1}\n'),
           match="unk.jsonl:1: unknown field(s) ['colour']")
    raises(load_facts, write(tmp_path / "dup.jsonl", good + "\n" + good + "\n"), match="dup.jsonl:2: duplicate fact id 'a'")
    raises(load_facts, write(tmp_path / "x.parquet", ""), match="x.parquet: unsupported file type")


def test_csv_errors_name_line(tmp_path):
    raises(load_facts, write(tmp_path / "a.csv", "id,question\nx,Q\n"), match="a.csv:1: missing column(s) ['answer']")
    raises(load_facts, write(tmp_path / "b.csv", "id,question,answer,colour\nx,Q,A,red\n"), match="b.csv:1: unknown column(s) ['colour']")
    raises(load_facts, write(tmp_path / "c.csv", "id,question,answer\nx,Q,A\ny,Q,A,extra\n"), match="c.csv:3: wrong number of fields")
    raises(load_facts, write(tmp_path / "d.csv", "id,question,answer\nx,Q,A\ny,Q2,\n"), match="d.csv:3: field 'answer'")
    raises(load_facts, write(tmp_path / "e.csv", "id,question,answer,mcq_options\nx,Q,A,B|C\n"), match="e.csv:2: mcq_options")


def test_document_errors(tmp_path):
    raises(load_documents, write(tmp_path / "d.jsonl", '{"id": "a", "text": "t"}\n{"id": "b"}\n'), match="d.jsonl:2: field 'id' or 'text'")
    raises(load_documents, write(tmp_path / "u.jsonl", '{"id": "a", "text": "t", "x": 1}\n'), match="u.jsonl:1: unknown field(s)")
    raises(load_documents, write(tmp_path / "d.csv", "id,text\n"), match="d.csv: unsupported file type")


def test_tofu_errors(tmp_path):
    raises(load_tofu, write(tmp_path / "t.json", '[{"question": "Q", "answer": "A"}, {"question": "Q2"}]'),
           match="t.json item 1: column 'answer'")
    raises(load_tofu, write(tmp_path / "t.jsonl", '{"question": "Q", "answer": "A"}\n{"answer": "A"}\n'),
           match="t.jsonl:2: column 'question'")
    raises(load_tofu, write(tmp_path / "b.json", '[{"question": "Q",\n "answer": }]'), match="b.json:2: malformed JSON")


def test_hf_errors(tmp_path):
    raises(load_hf_dataset, FIXTURES / "tofu_mini.json", format="squad", match="unknown format 'squad'")
    raises(load_hf_dataset, "nobody-xyz/no-such-dataset", match="nobody-xyz/no-such-dataset: cannot load dataset")


def test_task_errors(tmp_path):
    facts = people_task("test")
    save_facts(facts.forget, tmp_path / "forget.jsonl")
    save_facts(facts.retain, tmp_path / "retain.jsonl")
    save_facts([*facts.retain[:1], facts.forget[0]], tmp_path / "overlap.jsonl")
    write(tmp_path / "empty.jsonl", "\n")
    cases = {
        "unknown_key.yaml": ("forget: forget.jsonl\nretian: retain.jsonl\n", "unknown_key.yaml: unknown key(s) ['retian']"),
        "fmt.yaml": ("format: parquet\nforget: forget.jsonl\n", "fmt.yaml: unknown format 'parquet'"),
        "empty.yaml": ("forget: forget.jsonl\nretain: empty.jsonl\n", "empty.jsonl: the retain split is empty"),
        "overlap.yaml": ("forget: forget.jsonl\nretain: overlap.jsonl\n", "overlap.yaml: task 'overlap': fact"),
        "noforget.yaml": ("retain: retain.jsonl\n", "noforget.yaml: task 'noforget': the forget split is empty"),
        "syntax.yaml": ("forget: forget.jsonl\nretain: [a, b\n", "syntax.yaml:3: malformed YAML"),
        "scalar.yaml": ("just text\n", "scalar.yaml: expected a mapping"),
        "badpath.yaml": ("forget: {a: 1}\n", "badpath.yaml: split paths must be strings"),
    }
    for name, (text, match) in cases.items():
        raises(load_task, write(tmp_path / name, text), match=match)
    raises(load_task, {"forget": "forget.jsonl", "retain": "forget.jsonl"}, base_dir=tmp_path, match="task spec: task 'task'")


def test_json_list_facts(tmp_path):
    facts = people_task("test").retain[:2]
    path = write(tmp_path / "f.json", json.dumps([f.to_dict() for f in facts], indent=1))
    assert load_facts(path) == facts
    raises(load_facts, write(tmp_path / "g.json", '[{"id": "a", "question": "Q", "answer": "A"}, {"id": "b"}]'),
           match="g.json item 1: field 'question'")


def test_facts_without_ids_are_named_by_file_and_line(tmp_path):
    """A user's file of question/answer/cloze/subject rows loads as it is; ids are `<stem>.<line>`."""
    rows = [{"question": "Q1?", "answer": "A1", "cloze": "c1", "subject": "S"}, {"question": "Q2?", "answer": "A2"}]
    jsonl = write(tmp_path / "forget.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    assert [(f.id, f.cloze) for f in load_facts(jsonl)] == [("forget.1", "c1"), ("forget.2", "")]
    csv_file = write(tmp_path / "retain.csv", "question,answer,subject\nQ1?,A1,S\nQ2?,A2,T\n")
    assert [f.id for f in load_facts(csv_file)] == ["retain.2", "retain.3"]
    listed = write(tmp_path / "holdout.json", json.dumps(rows))
    assert [f.id for f in load_facts(listed)] == ["holdout.1", "holdout.2"]
    given = write(tmp_path / "mixed.jsonl", json.dumps({"id": "mine", **rows[0]}) + "\n" + json.dumps(rows[1]) + "\n")
    assert [f.id for f in load_facts(given)] == ["mine", "mixed.2"]
