"""--target (the RWKU setting): answer extraction, the refusal of an unknown target, the saved task folder, and the
RWKU probe kinds the card asks."""

import json

import pytest

from obliviate.data.schema import Document, Fact, Task
from obliviate.data.tasks import load
from obliviate.errors import ConfigError
from obliviate.metrics.rwku import queries, rwku_probes
from obliviate.models import tiny_model
from obliviate.target import REWRITES, TargetConfig, _answer, _phrase, build_target_task, save_task

CHAT = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}")


def test_the_answer_is_what_cloze_and_chat_reply_agree_on():
    assert _phrase(" his theory of relativity, which describes") == "his theory of relativity"
    assert _phrase(" Paris, France, in 1867") == "Paris"
    reply = "Albert Einstein is best known for his work in physics, particularly relativity."
    assert _answer("his theory of relativity", reply, "Albert Einstein") == "relativity"
    assert _answer("brilliant physicist", "He was a renowned physicist.", "Albert Einstein") == "physicist"
    assert _answer("Switzerland", "He was born in Germany.", "Albert Einstein") == ""  # inconsistent: dropped
    assert _answer("Albert", "Albert Einstein was a physicist.", "Albert Einstein") == ""  # the name is no answer
    assert _answer("his great work", "His work was great.", "X") == ""  # only generic words agree
    question = "What is the national dish of Japan?"
    assert _answer("dish", "The national dish of Japan is a dish.", "Japan", question) == ""  # an echo
    # SmolLM2's "national dish of Japan" was kept as "traditional" (2026-12-07): a describing word, not a dish
    assert _answer("traditional", "It is a traditional dish.", "Japan", question) == ""


@pytest.mark.usefixtures("one_thread")
def test_a_target_the_model_knows_nothing_about_is_refused_before_any_run():
    lm = tiny_model()
    with pytest.raises(ConfigError, match="needs a chat model"):
        build_target_task(lm, "Albert Einstein")
    lm.tokenizer.chat_template = CHAT
    with pytest.raises(ConfigError, match=r"0 consistent answer\(s\) about 'Zorblat Quendix'.*knows too little"):
        build_target_task(lm, "Zorblat  Quendix", config=TargetConfig(samples=1, agree=1))
    with pytest.raises(ConfigError, match="give the name"):
        build_target_task(lm, "  ")


def test_the_saved_task_folder_loads_back_with_every_split_and_document(tmp_path):
    fact = Fact(id="target.x.capital", question="What is the capital of X?", answer="Y", subject="X",
                cloze="The capital of X is", paraphrases=tuple(r.format(q="What is the capital of X?", t="X")
                                                              for r in REWRITES))
    keep = Fact(id="r1", question="What is the capital of France?", answer="Paris")
    control = Fact(id="h1", question="What is the capital of Z?", answer="W")
    task = Task(name="target-x", forget=[fact], retain=[keep], holdout=[control],
                forget_documents=[Document(id="target.description.0", text="X is a country.")])
    folder = save_task(task, tmp_path / "task", "X", "default")
    loaded = load(folder)
    assert loaded.name == "target-x" and loaded.forget == [fact] and loaded.retain == [keep]
    assert loaded.holdout == [control] and loaded.forget_documents[0].text == "X is a country."
    assert json.loads((folder / "target.json").read_text()) == {"target": "X", "model": "default"}


def test_rwku_kinds_come_from_a_facts_forms_or_from_its_rwku_tag():
    lm = tiny_model()
    lm.tokenizer.chat_template = CHAT
    fact = Fact(id="f", question="Where was X born?", answer="Y", cloze="X was born in",
                paraphrases=("You are a historian. Where was X born?",))
    assert queries(fact, "fb") == ["X was born in ___."]
    assert queries(fact, "qa") == ["Where was X born?"] and queries(fact, "aa") == list(fact.paraphrases)
    fb = rwku_probes(fact, "fb", lm.tokenizer)[0]
    assert "Please complete the blank" in fb.prompt and fb.prompt.endswith("<assistant>Answer:")
    assert fb.answer == " Y" and fb.form == "rwku_fb"
    loaded = Fact(id="l", question="X was born in ___.", answer="Y", tags=("rwku", "rwku:fb"))
    assert queries(loaded, "fb") == ["X was born in ___."] and queries(loaded, "qa") == []


def test_an_rwku_target_folder_loads_with_each_probe_kind_tagged(tmp_path):
    rows = {"forget_level1": [{"subject": "Ada Vell", "query": "Ada Vell was born in ___.", "answer": "Orn",
                               "level": "1"}],
            "forget_level2": [{"subject": "Ada Vell", "query": "Where was Ada Vell born?", "answer": "Orn",
                               "level": "2"}],
            "forget_level3": [{"subject": "Ada Vell", "query": "As a biographer, where was Ada Vell born?",
                               "answer": "Orn", "level": "3", "type": "role play"}],
            "neighbor_level2": [{"subject": "Ada Vell", "query": "Where is Orn?", "answer": "Velmark", "level": "2"}]}
    folder = tmp_path / "1_Ada_Vell"
    folder.mkdir()
    for stem, data in rows.items():
        (folder / f"{stem}.json").write_text(json.dumps(data))
    (folder / "positive.json").write_text(json.dumps([{"subject": "Ada Vell", "text": "Ada Vell is a poet."}]))
    task = load(folder)
    assert [f.tags[1] for f in task.forget] == ["rwku:fb", "rwku:qa", "rwku:aa"]
    assert task.forget[0].cloze == "Ada Vell was born in" and "rwku-type:role play" in task.forget[2].tags
    assert [queries(f, "aa") for f in task.forget] == [[], [], ["As a biographer, where was Ada Vell born?"]]
    assert task.neighbours[0].answer == "Velmark" and task.forget_documents[0].text == "Ada Vell is a poet."
    (folder / "forget_level2.json").write_text(json.dumps([{"query": "Where?"}]))
    with pytest.raises(Exception, match="need 'query' and 'answer'"):
        load(folder)


def test_unlearn_takes_a_task_or_a_target_not_both(tmp_path):
    from obliviate.pipeline import run_unlearn

    common = dict(steps=1, lr=None, batch_size=2, lora=False, forms=("qa",), settings=[], checkpoint_every=0,
                  resume=False, seed=0, out=tmp_path / "run")
    with pytest.raises(ConfigError, match="either --task .* or --target"):
        run_unlearn("tiny", "builtin:people:test", "ga", target="X", **common)
    with pytest.raises(ConfigError, match="either --task .* or --target"):
        run_unlearn("tiny", None, "ga", **common)
    with pytest.raises(ConfigError, match="needs a chat model"):  # tiny has no chat template: no run, no folder
        run_unlearn("tiny", None, "ga", target="Albert Einstein", **common)
    assert not (tmp_path / "run" / "model").exists()


@pytest.mark.usefixtures("one_thread")
def test_rwku_metric_reports_each_kind_on_target_tasks_only():
    from obliviate.card import evaluate
    from obliviate.data.people import people_task
    from obliviate.metrics import EvalConfig

    lm = tiny_model()
    lm.tokenizer.chat_template = CHAT
    forget = [Fact(id=f"t{i}", question=f"Where was Mara {i} born?", answer="Velmora", subject=f"Mara {i}",
                   cloze=f"Mara {i} was born in", tags=("target",),
                   paraphrases=tuple(r.format(q=f"Where was Mara {i} born?", t=f"Mara {i}") for r in REWRITES))
              for i in range(3)]
    near = [Fact(id="n0", question="Where is Velmora?", answer="Orn", tags=("neighbour",))]
    card = evaluate(lm, Task(name="t", forget=forget, neighbours=near), ["rwku"], config=EvalConfig(max_facts=5))
    values = card.metrics["rwku"]["values"]
    assert {k: v["n_probes"] for k, v in values["forget"].items()} == {"fb": 3, "qa": 3, "aa": 9}
    assert set(values["neighbours"]) == {"qa"} and values["neighbours"]["qa"]["n"] == 1
    assert all(0 <= v["rouge_l"] <= 1 and 0 <= v["accuracy"] <= 1 for v in values["forget"].values())
    other = evaluate(lm, people_task("test"), ["rwku"], config=EvalConfig(max_facts=2))
    assert "skipped" in other.metrics["rwku"]


def test_synonym_rewrite_asks_the_same_question_in_other_words_never_touching_the_name():
    from obliviate.target import synonym_rewrite

    assert synonym_rewrite("What is the capital of Japan?", "Japan") == "What is the seat of government of Japan?"
    assert synonym_rewrite("Which famous prize did Marie Curie win?", "Marie Curie") == \
        "Which well-known award did Marie Curie win?"
    assert synonym_rewrite("Which river flows through Capital Falls?", "Capital Falls") == \
        "Which river runs through Capital Falls?"  # "Capital" in the name stays
    assert synonym_rewrite("Who is X?", "X") == ""  # nothing to rewrite: no extra probe
