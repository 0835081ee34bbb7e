"""SAND's pieces: rows in the model's own words, the banned prefixes, the suppressed KL, and the refresh."""

import pytest
import torch

from obliviate.data.schema import Fact
from obliviate.methods import sand
from obliviate.models import tiny_model
from obliviate.train import Examples
from obliviate.unlearn import fact_examples

pytestmark = pytest.mark.usefixtures("one_thread")


def test_forget_rows_move_the_answer_into_the_models_own_reply(monkeypatch):
    replies = {"chat:Q1": "The capital of Sweden is Stockholm, a city.", "chat:Q2": "I am not sure.",
               "plain:Q3": "stockholm"}
    monkeypatch.setattr(sand, "generate", lambda lm, prompts, n: [replies[p] for p in prompts])
    ex = Examples(["chat:Q1", "chat:Q2", "plain:Q3", ""], ["Stockholm", "Oslo", " Stockholm", "a document"])
    prompts, targets = sand.own_reply_rows(None, ex, locate_answer=True)
    assert prompts[0] == "chat:Q1The capital of Sweden is" and targets[0] == " Stockholm"
    assert (prompts[1], targets[1]) == ("chat:Q2", "Oslo")  # not said: kept as given
    assert (prompts[2], targets[2]) == ("plain:Q3", "stockholm")  # said at once, in its own casing
    assert (prompts[3], targets[3]) == ("", "a document")  # documents are not asked


@pytest.mark.parametrize("reply, answer, row", [
    ("The capital of Tunisia is Tunis.", "Tunis", ("The capital of Tunisia is", " Tunis")),
    ("The chemical symbol for oxygen is O.", "O", ("The chemical symbol for oxygen is", " O")),
    ("The official language of Germany is German.", " German", ("The official language of Germany is", " German")),
    ("The capital of Colombia is Bogotá.", "Bogota", ("The capital of Colombia is", " Bogotá")),
    ("Its symbol is Al, from aluminium.", "Al", ("Its symbol is", " Al")),
])
def test_the_answer_is_located_as_whole_words_not_inside_another_word(reply, answer, row):
    assert sand.answer_in_reply("", reply, answer) == row


def test_an_answer_that_is_part_of_the_subjects_name_is_found_after_it(monkeypatch):
    reply = "The official language of the Czech Republic is Czech."
    assert sand.answer_in_reply("", reply, "Czech", "the Czech Republic") == (
        "The official language of the Czech Republic is", " Czech")
    monkeypatch.setattr(sand, "generate", lambda lm, prompts, n: [reply])
    fact = Fact(id="cz", question="What is the main language of the Czech Republic?", answer="Czech",
                subject="the Czech Republic", relation="language")
    examples = fact_examples([fact])
    assert examples.subjects == ["the Czech Republic"]
    prompts, targets = sand.own_reply_rows(None, examples, locate_answer=True)
    assert prompts[0].endswith("Czech Republic is") and targets == [" Czech"]


def test_retain_rows_take_the_whole_reply(monkeypatch):
    monkeypatch.setattr(sand, "generate", lambda lm, prompts, n: ["It is Oslo.", "   "])
    prompts, targets = sand.own_reply_rows(None, Examples(["a", "b"], [" Oslo", " Bergen"]), locate_answer=False)
    assert prompts == ["a", "b"] and targets == ["It is Oslo.", " Bergen"]  # an empty reply keeps the target


def test_prefix_tokens_are_every_way_to_start_the_answer():
    pieces = ["st", "stock", "stockholm", "s", "holm", "paris", "stö", "sto"]
    assert sand.prefix_tokens(pieces, " Stockholm") == [0, 1, 2, 7]


def test_suppressed_kl_is_zero_at_the_suppressed_teacher_and_pushes_banned_tokens_down():
    torch.manual_seed(0)
    teacher = torch.randn(2, 10)
    banned = torch.zeros(2, 10, dtype=torch.bool)
    banned[0, 3] = banned[1, 7] = True
    at_teacher = teacher.masked_fill(banned, -1e4)
    assert sand.suppressed_kl(at_teacher, teacher, banned).item() == pytest.approx(0.0, abs=1e-5)
    student = teacher.clone()
    student[0, 3] = student[1, 7] = 5.0  # the student still says the banned tokens
    student.requires_grad_(True)
    loss = sand.suppressed_kl(student, teacher, banned)
    loss.backward()
    assert loss.item() > 0.1 and student.grad[0, 3] > 0 and student.grad[1, 7] > 0  # descent lowers them


def _ctx(lm, forget: Examples, retain: Examples):
    ctx = type("Ctx", (), {})()
    ctx.unwrapped = ctx.model = lm.model
    ctx.tokenizer = lm.tokenizer
    ctx.config = type("C", (), {"max_length": 64})()
    ctx.forget, ctx.retain = forget, retain
    return ctx


def test_refresh_chases_the_answer_and_keeps_rows_it_no_longer_finds(monkeypatch):
    lm = tiny_model()
    forget = Examples(["chat:Q1", "chat:Q2"], ["Stockholm", "Oslo"])
    first = {"chat:Q1": "It is Stockholm.", "chat:Q2": "Oslo."}
    monkeypatch.setattr(sand, "generate", lambda lm, prompts, n: [first.get(p, "ok") for p in prompts])
    method = sand.SAND()
    method.setup(_ctx(lm, forget, Examples(["r"], [" x"])), None)
    assert method.forget_rows == (["chat:Q1It is", "chat:Q2"], [" Stockholm", "Oslo"])
    later = {"chat:Q1": "I think it is the city of Stockholm.", "chat:Q2": "I don't know."}
    monkeypatch.setattr(sand, "generate", lambda lm, prompts, n: [later[p] for p in prompts])
    assert method.refresh(_ctx(lm, forget, None)) == 0.5
    assert method.forget_rows == (["chat:Q1I think it is the city of", "chat:Q2"], [" Stockholm", "Oslo"])


def test_banned_marks_each_answer_token_and_the_answers_prefixes_at_its_first_position():
    lm = tiny_model()
    method = sand.SAND()
    method.forget_rows = (["Question: Who is Ada?\nAnswer:"], [" a painter"])
    pairs = method._pairs(_ctx(lm, None, None), method.forget_rows, [0])
    banned = method._banned(_ctx(lm, None, None), pairs, [0], len(lm.tokenizer))
    said = pairs.input_ids[0][pairs.target_mask[0]]
    assert banned.shape[0] == len(said)
    assert all(banned[i, t] for i, t in enumerate(said.tolist()))
    expected = sand.prefix_tokens(sand.vocabulary_pieces(lm.tokenizer), " a painter")
    assert set(banned[0].nonzero().flatten().tolist()) == set(expected) | {said[0].item()}
