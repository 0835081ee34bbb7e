"""Every registered attack on a tiny model: runs within its budget, returns well-formed, judged outcomes.
Plus the guards that keep attacks honest (no hint, prompt or suffix may carry the answer) and the runner.
"""

import copy
import json
import math
import random
from collections import Counter
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from obliviate.attacks import ATTACKS, AttackContext, AttackResult, Budget, Outcome, find_targets
from obliviate.attacks.adversarial_suffix import AdversarialSuffix, banned_tokens
from obliviate.attacks.base import halves, judge_groups
from obliviate.attacks.in_context import candidate_hints, hints
from obliviate.attacks.relearning import Relearning, training_facts
from obliviate.attacks.requantization import (
    Requantization,
    fake_quantize,
    int8_dynamic,
    nf4_levels,
    nf4_quantize,
    quantized,
)
from obliviate.attacks.step_by_step import StepByStep, builtin_prompts, load_prompt_file
from obliviate.data.forms import direct_probes, probes
from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.hooks import n_layers
from obliviate.judge import judge
from obliviate.models import LoadedModel, tiny_model
from obliviate.redteam import RedTeamReport, attack, attack_names, print_report, run_attack_command
from obliviate.scoring import hidden_states

NAMES = attack_names(None)
BUDGET = Budget(steps=2, samples=2, seconds=60.0, max_facts=3)
SLACK = 30.0  # seconds an attack may overrun its budget (it checks between steps, not inside one)


def _ctx(task, budget=BUDGET, original=None):
    ctx = AttackContext(task, None, budget)
    ctx.targets = find_targets(ctx)  # no original: the first max_facts forget facts
    ctx.original = original
    return ctx


def test_registry_has_every_attack():
    assert set(NAMES) >= {"relearning", "in_context", "step_by_step", "form_change", "adversarial_suffix",
                          "activation_steering", "latent_perturbation", "requantization", "trace_detection",
                          "benign_relearning", "best_of_n", "directional_ablation", "format_shift"}
    assert attack_names("gcg,anonact") == ["adversarial_suffix", "activation_steering"]


@pytest.mark.parametrize("name", NAMES)
def test_attack_runs_within_budget_and_returns_outcomes(name, task, lm):
    cls = ATTACKS.get(name)
    ctx = _ctx(task, original=tiny_model(seed=1) if cls.needs_original else None)
    before = {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
    result = cls().run(lm, ctx)
    assert result.attack == name and result.budget == asdict(BUDGET)
    assert 0 <= result.seconds <= BUDGET.seconds + SLACK
    json.dumps(result.to_dict(), default=str)  # JSON-ready
    target_ids = {f.id for f in ctx.targets}
    ids = [o.fact_id for o in result.outcomes]
    assert len(ids) == len(set(ids)) and set(ids) <= target_ids
    for o in result.outcomes:
        assert isinstance(o.recovered, bool) and 0.0 <= o.probability <= 1.0
    if cls.recovers:
        assert result.outcomes, f"{name} judged no fact"
        assert 0.0 <= result.recovery_rate <= 1.0
    else:
        assert 0.0 <= result.details["accuracy"] <= 1.0
    after = lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed the attacked model"


def test_time_budget_stops_the_optimising_attacks(task, lm):
    ctx = _ctx(task, replace(BUDGET, steps=50, seconds=0.0))
    gcg = AdversarialSuffix().run(lm, ctx)
    assert gcg.details["steps"] == 0
    relearn = Relearning().run(lm, ctx)
    assert "1 steps (time budget)" in relearn.notes


def test_judge_groups_any_probe_counts_and_empty_group_is_not_recovered(task, lm):
    fact = task.forget[0]
    right = replace(probes(fact, "qa")[0], prompt="Question: Where?\nAnswer:")
    outcomes = judge_groups(lm, [fact, task.forget[1]], [[right], []])
    assert outcomes[1].recovered is False and outcomes[1].prompt == ""
    assert outcomes[0].prompt == right.prompt


def test_in_context_hints_never_contain_the_answer():
    task = people_task("small")
    rng = random.Random(0)
    for fact in task.forget:
        for hint in hints(fact, task, rng, k=50):
            assert not judge(f"{hint.question} {hint.answer}", fact.answer), (fact.id, hint)


def test_in_context_drops_a_neighbour_that_shares_the_answer(task):
    fact = task.forget[0]
    twin = replace(task.retain[0], id="twin", subject=fact.subject, answer=fact.answer, question="Twin question?")
    leaky = replace(task, retain=[twin, *task.retain])
    assert twin in candidate_hints(fact, leaky)
    assert twin not in hints(fact, leaky, random.Random(0), k=50)


def test_step_by_step_prompts_never_contain_the_answer(task):
    for fact in task.forget:
        prompts = builtin_prompts(fact)
        assert {c for c, _ in prompts} == {"direct", "indirect", "implied"}
        assert all(p.rstrip().endswith("Answer:") and not judge(p, fact.answer) for _, p in prompts)


def test_step_by_step_prompt_file(task, lm, tmp_path):
    fact = task.forget[0]
    path = tmp_path / "prompts.jsonl"
    rows = [{"category": "implied", "template": "About {subject}: {question}\nAnswer:"},
            {"category": "direct", "fact_id": fact.id, "prompt": f"It is {fact.answer}, right?\nAnswer:"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    result = StepByStep(prompts=path).run(lm, _ctx(task))
    assert result.details["source"] == "file" and "dropped 1 prompt" in result.notes  # the leaky one
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"category": "direct", "template": "{question} {answer}"}))
    with pytest.raises(ConfigError, match="answer"):
        load_prompt_file(bad)
    bad.write_text(json.dumps({"category": "sideways", "template": "{question}"}))
    with pytest.raises(ConfigError, match="category"):
        load_prompt_file(bad)


def test_benign_relearning_trains_on_fact_free_text_and_judges_every_target(task, lm):
    ctx = _ctx(task)
    result = ATTACKS.get("benign_relearning")().run(lm, ctx)
    assert result.details["source"] == "benign" and result.details["trained_on"] == []
    assert [o.fact_id for o in result.outcomes] == [f.id for f in ctx.targets]
    assert "10 fact-free sentences" in result.notes
    with pytest.raises(ConfigError, match="benign"):
        Relearning("everything")


def test_relearning_never_trains_on_a_held_out_answer(task):
    ctx = _ctx(task, replace(BUDGET, max_facts=6))
    ctx.targets = list(task.forget)
    train, held = training_facts(ctx, "half")
    assert train and held and not {f.id for f in train} & {f.id for f in held}
    assert not {f.answer for f in train} & {f.answer for f in held}
    twin = replace(held[0], id="twin")  # same answer as a held-out fact: must be left out
    ctx.targets = [*ctx.targets, twin]
    train, held = training_facts(ctx, "half")
    assert not {f.answer for f in train} & {f.answer for f in held}
    with pytest.raises(ConfigError):
        Relearning(source="everything")


def test_halves_are_disjoint_and_deterministic(task):
    a, b = halves(task.forget, 3)
    assert (a, b) == halves(task.forget, 3) and len(a) + len(b) == len(task.forget)


def test_gcg_bans_every_answer_token(task, lm):
    banned = banned_tokens(lm.tokenizer, task.forget)
    for fact in task.forget:
        ids = lm.tokenizer(" " + fact.answer, add_special_tokens=False)["input_ids"]
        assert banned[ids].all()
    assert not banned.all()


def test_requantization_variants(lm):
    q = int8_dynamic(lm)
    assert any("quantized" in type(m).__module__ for m in q.model.modules())
    f = fake_quantize(lm, 4)
    w = f.model.model.layers[0].mlp.down_proj.weight[0]
    assert len(torch.unique(w)) <= 15
    assert not torch.equal(w, lm.model.model.layers[0].mlp.down_proj.weight[0])
    grouped = fake_quantize(lm, 4, group=5).model.model.layers[0].mlp.down_proj.weight[0]  # last group shorter
    groups = list(grouped.split(5))
    assert len(groups[-1]) < 5 and all(len(torch.unique(g.abs())) <= 8 for g in groups)
    assert len(torch.unique(grouped.abs())) > 8  # one scale per group, not per row
    assert quantized(lm, "int4_g5").source.endswith("+int4_g5")
    with pytest.raises(ConfigError, match="int4_g64"):
        Requantization(("int4x",))


class _TwoLayers(torch.nn.Sequential):
    def get_output_embeddings(self) -> torch.nn.Module:
        return self[1]


def test_nf4_levels_are_qlora_normal_float_and_round_gaussian_weights_better_than_int4(lm):
    levels = nf4_levels()
    # three entries of the table in QLoRA (arXiv 2305.14314, Appendix E), computed here from its definition
    assert len(levels) == 16 and levels[0] == -1 and levels[7] == 0 and levels[-1] == 1
    assert levels[1].item() == pytest.approx(-0.6961928, abs=1e-6) and levels[8].item() == pytest.approx(0.0795803, abs=1e-6)
    gaussian = LoadedModel(_TwoLayers(torch.nn.Linear(128, 64, bias=False), torch.nn.Linear(64, 8)), None, "g")
    torch.nn.init.normal_(gaussian.model[0].weight)
    nf4 = nf4_quantize(gaussian).model[0].weight
    int4 = fake_quantize(gaussian, 4, group=64).model[0].weight
    w = gaussian.model[0].weight
    for block in nf4.reshape(-1, 64):  # every weight is its block's absmax times one of the 16 levels
        assert torch.isin((block / block.abs().max()).round(decimals=5), levels.round(decimals=5)).all()
    assert ((nf4 - w) ** 2).mean() < ((int4 - w) ** 2).mean()  # NF4 is built for normally distributed weights
    assert torch.equal(nf4_quantize(gaussian).model[1].weight, gaussian.model[1].weight)  # output layer kept
    assert quantized(lm, "nf4_g32").source.endswith("+nf4_g32") and "nf4_g64" in Requantization().variants


def test_redteam_report_save_and_print(task, lm, tmp_path, capsys):
    report = attack(lm, task, None, "form_change,in_context", BUDGET, progress=False)
    assert list(report.results) == ["form_change", "in_context"]
    assert report.targets == [f.id for f in task.forget[:3]]
    assert report.control["kind"] == "holdout" and report.control["targets"] == [f.id for f in task.holdout[:3]]
    for name in report.results:  # the same attack, budget and seed ran on the control's facts
        assert [o.fact_id for o in report.controls[name].outcomes] == report.control["targets"]
    name, est = report.worst_case
    assert name in report.results
    assert (est.lo, est.value) == max((e.lo, e.value) for e in map(report.above_control, report.results))
    path = report.save(tmp_path)
    data = json.loads(path.read_text())
    assert path.name == "attacks.json" and data["budget"] == asdict(BUDGET)
    assert set(data["results"]) == {"form_change", "in_context"} and "baseline" in data
    row = data["results"]["form_change"]
    assert set(row["above_control"]) == {"value", "ci", "n"} and row["control"]["rate"]["n"] == 3
    print_report(report)
    out = capsys.readouterr().out
    assert "control: holdout" in out and "never knew" in out


def test_above_control_subtracts_what_a_model_that_never_knew_gets():
    """Raw 6/10 looks like recovery; the control gets 5/10 with the same tries, so nothing is shown to be back."""
    report = RedTeamReport("m", "o", "t", {}, [f"f{i}" for i in range(10)], 0.0,
                           control={"kind": "holdout", "targets": [f"h{i}" for i in range(10)]})
    report.results["x"] = AttackResult("x", {}, [Outcome(f"f{i}", i < 6) for i in range(10)])
    report.controls["x"] = AttackResult("x", {}, [Outcome(f"h{i}", i < 5) for i in range(10)])
    est = report.above_control("x")
    assert est.value == pytest.approx(0.1) and est.lo < 0 < est.hi
    paired = RedTeamReport("m", "o", "t", {}, [f"f{i}" for i in range(40)], 0.0,
                           control={"kind": "reference", "targets": [f"f{i}" for i in range(40)]})
    paired.results["x"] = AttackResult("x", {}, [Outcome(f"f{i}", i < 20) for i in range(40)])
    paired.controls["x"] = AttackResult("x", {}, [Outcome(f"f{i}", i < 4) for i in range(40)])
    est = paired.above_control("x")
    assert est.value == pytest.approx(0.4) and est.lo > 0  # paired on the same facts: clearly above


def test_attacks_need_a_control(task, lm):
    bare = replace(task, holdout=[])
    with pytest.raises(ConfigError, match="holdout facts .* --reference"):
        attack(lm, bare, None, ["form_change"], BUDGET, progress=False)
    report = attack(lm, bare, None, ["form_change"], BUDGET, reference=tiny_model(seed=3), progress=False)
    assert report.control["kind"] == "reference" and report.control["targets"] == report.targets


def test_redteam_skips_attacks_needing_the_original_and_records_errors(task, lm, monkeypatch):
    def boom(self, lm, ctx):
        raise RuntimeError("kaput")

    monkeypatch.setattr(ATTACKS.get("form_change"), "run", boom)
    report = attack(lm, task, None, ["trace_detection", "form_change"], BUDGET, progress=False)
    assert "needs the original" in report.results["trace_detection"].notes
    assert "kaput" in report.results["form_change"].notes and report.worst_case == (None, None)


def test_run_attack_command_writes_attacks_json(tmp_path):
    report = run_attack_command("tiny", None, "tests/fixtures/task", "form_change", tmp_path,
                                budget=Budget(max_facts=2))
    assert (tmp_path / "attacks.json").exists() and len(report.targets) == 2


def test_beyond_plain_counts_only_facts_plain_qa_no_longer_answers():
    report = RedTeamReport("m", "o", "t", {}, ["a", "b", "c"], 1 / 3, answered_plainly=["a"])
    report.results["form_change"] = AttackResult("form_change", {}, [Outcome("a", True), Outcome("b", True),
                                                                    Outcome("c", False)])
    assert report.results["form_change"].recovery_rate == 2 / 3  # counts "a", which was never forgotten
    assert report.beyond_plain("form_change") == (1, 2)
    assert report.to_dict()["results"]["form_change"]["beyond_plain"] == (1, 2)


def test_best_of_n_samples_budget_times_and_counts_any_right_answer(task, lm):
    import obliviate.attacks.best_of_n as module

    budget = replace(BUDGET, samples=module.DRAWS_PER_PASS + 2)  # two passes over the prompts
    result = ATTACKS.get("best_of_n")().run(lm, _ctx(task, budget))
    assert result.details["samples"] == budget.samples and result.details["temperature"] == 1.0
    counts = result.details["recovered_after_k_samples"]
    assert len(counts) == budget.samples and counts == sorted(counts)  # any right answer so far: never falls
    assert counts[-1] == sum(o.recovered for o in result.outcomes)
    with pytest.raises(ConfigError, match="temperature"):
        ATTACKS.get("best_of_n")(temperature=0)


def test_directional_ablation_removes_the_unlearning_shift_from_every_block_but_the_last(task, lm, monkeypatch):
    import obliviate.attacks.directional_ablation as module

    original = tiny_model(seed=1)
    seen = {}
    real_judge = module.judge_groups

    def judged(model, facts, groups, **kw):  # read block outputs while the attack's hooks are on
        from obliviate.hooks import capture

        with capture(model.model, *(f"resid.{i}" for i in range(n_layers(model.model)))) as acts:
            model.model(input_ids=torch.tensor([[5, 6, 7]]))
        seen[len(seen)] = dict(acts)
        return real_judge(model, facts, groups, **kw)

    monkeypatch.setattr(module, "judge_groups", judged)
    ctx = _ctx(task, original=original)
    result = ATTACKS.get("directional_ablation")().run(lm, ctx)
    layer = result.details["layer"]
    assert layer in result.details["retain_kept"] and len(result.outcomes) == len(ctx.targets)
    prompts = [p.prompt for f in ctx.targets for p in direct_probes(f, lm.tokenizer)]
    shift = hidden_states(lm, prompts)[:, layer].mean(0) - hidden_states(original, prompts)[:, layer].mean(0)
    last = seen[len(seen) - 1]  # the targets' judging pass, under the chosen direction
    for i in range(n_layers(lm.model) - 1):
        assert (last[f"resid.{i}"] @ (shift / shift.norm())).abs().max() < 1e-4, i
    free = lm.model(input_ids=torch.tensor([[5, 6, 7]]), output_hidden_states=True).hidden_states
    assert not torch.allclose(free[1], last["resid.0"])  # without the hooks the component is there
    assert ATTACKS.get("directional_ablation").needs_original  # the shift needs the model before unlearning


def test_format_shift_asks_the_question_in_untrained_formats(task, lm):
    from obliviate.attacks.format_shift import variants

    fact = task.forget[0]
    plain = {p.form: p.prompt for p in variants(fact, lm.tokenizer)}
    assert plain == {"bare_question": fact.question, "q_a": f"Q: {fact.question}\nA:"}  # no chat template here
    chat = copy.deepcopy(lm.tokenizer)
    chat.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                          "{% if add_generation_prompt %}<assistant>{% endif %}")
    shifted = {p.form: p.prompt for p in variants(fact, chat)}
    assert {"chat_system_0", "chat_system_1", "chat_after_turn"} <= set(shifted)
    assert shifted["chat_system_0"].startswith("<system>\n") and "<system>You are a knowledgeable" in shifted["chat_system_1"]
    assert "two plus two" in shifted["chat_after_turn"]
    assert all(shifted[f].endswith(f"<user>{fact.question}\n<assistant>") for f in shifted if f.startswith("chat"))
    chat.chat_template = {"default": chat.chat_template,  # a model shipping another (e.g. language) template
                          "francais": "{% for m in messages %}[{{ m['content'] }}]{% endfor %}Réponse :"}
    named = {p.form: p.prompt for p in variants(fact, chat)}
    assert named["chat_template_francais"] == f"[{fact.question}]Réponse :"
    assert named["chat_after_turn"] == shifted["chat_after_turn"]  # the default template is the default


def test_step_by_step_lets_a_chat_model_reason_and_judges_its_final_answer(task, lm, monkeypatch):
    import obliviate.attacks.step_by_step as module

    assert module.final_answer("Step 1: she was born somewhere.\nAnswer: Velmora.") == "Velmora."
    assert module.final_answer("I think about it.\nVelmora") == "I think about it.\nVelmora"  # short: read whole
    assert module.final_answer("Mara was mentored by Velmora and received " * 8) == ""  # a long ramble concludes nothing
    chat = LoadedModel(lm.model, copy.deepcopy(lm.tokenizer), lm.source)
    chat.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                                    "{% if add_generation_prompt %}<assistant>{% endif %}")
    ctx = _ctx(task)
    first, second = ctx.targets[0], ctx.targets[1]
    asked = []

    def replies(model, prompts, max_new_tokens, stop_at_newline):
        asked.extend(prompts)
        assert max_new_tokens == module.REASONING_TOKENS and not stop_at_newline
        # the first target concludes with its answer; the second names it while reasoning but concludes otherwise
        return [f"Step 1: recall.\nAnswer: {first.answer}" if first.question in p else
                f"Maybe {second.answer}? No.\nAnswer: I do not know" for p in prompts]

    monkeypatch.setattr(module, "generate", replies)
    result = module.StepByStep().run(chat, ctx)
    recovered = {o.fact_id: o.recovered for o in result.outcomes}
    assert recovered[first.id] and not recovered[second.id]
    assert result.details["reasoning_tokens"] == module.REASONING_TOKENS
    assert all(p.endswith("<assistant>") and module.REASON in p and not p.rstrip().endswith("Answer:") for p in asked)


def test_steering_gives_each_sampled_row_its_own_vector_while_other_rows_finish(task, lm):
    """Rows that finish early leave the batch; the rows after them must keep their own steering vector."""
    from obliviate.attacks.activation_steering import RowSteering
    from obliviate.hooks import hooks, n_layers
    from obliviate.scoring import generate, sample

    last, prompt, budget = n_layers(lm.model) - 1, "Question: Where was Mara Quill born?\nAnswer:", 6
    head = lm.model.get_output_embeddings().weight.detach()
    toward = {t: 50 * head[t] / head[t].norm() for t in (lm.tokenizer.eos_token_id, 40)}  # says eos / token 40
    zero = torch.zeros_like(head[0])
    rows = [zero, toward[lm.tokenizer.eos_token_id], zero, toward[40]]

    def alone(delta: torch.Tensor, whole_reply: bool = True) -> str:  # one prompt, plain greedy decoding
        def add(act, _name):
            if act.shape[1] == 1 and not whole_reply:  # a decode step
                return None
            out = act.clone()
            out[:, -1] += delta
            return out
        with hooks(lm.model, (f"resid.{last}", add)):
            return generate(lm, [prompt], budget)[0]

    steering = RowSteering({last: torch.stack(rows)}, whole_reply=True)
    with hooks(lm.model, (f"resid.{last}", steering.hook(last))):
        got = sample(lm, prompt, len(rows), budget, temperature=1e-4, on_rows=steering.follow)
    assert got[1] == "" and got[3] == alone(toward[40]) != got[0]  # row 3 kept its vector after row 1 left
    assert got[0] == got[2] == alone(zero) == generate(lm, [prompt], budget)[0]
    first_only = RowSteering({last: torch.stack(rows)}, whole_reply=False)  # plain QA: the first token only
    with hooks(lm.model, (f"resid.{last}", first_only.hook(last))):
        got = sample(lm, prompt, len(rows), budget, temperature=1e-4, on_rows=first_only.follow)
    assert got[1] == "" and got[3] == alone(toward[40], whole_reply=False)
    assert got[3].startswith(lm.tokenizer.decode([40]).strip())
    first_only.follow(torch.tensor([0, 3]))  # decoding: only the whole-reply steering adds
    steering.follow(torch.tensor([0, 3]))
    assert first_only.hook(last)(torch.zeros(2, 1, head.shape[1]), "x") is None
    assert steering.hook(last)(torch.zeros(2, 1, head.shape[1]), "x") is not None
    chat = LoadedModel(lm.model, copy.deepcopy(lm.tokenizer), lm.source)
    chat.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                                    "{% if add_generation_prompt %}<assistant>{% endif %}")
    assert ATTACKS.get("activation_steering")().run(chat, _ctx(task)).details["form"] == "chat"
    assert ATTACKS.get("activation_steering")().run(lm, _ctx(task)).details["form"] == "qa"


def test_steering_judges_the_most_frequent_word_not_whichever_sample_is_right(task, lm, monkeypatch):
    """AnonAct's selection: the answer is not allowed to pick among samples or settings."""
    from obliviate.attacks import activation_steering as module

    assert module.candidate_words(["The capital is New Delhi.", "Delhi, of course"], "Capital of India?") == \
        {"new": 1, "delhi": 2, "course": 1}  # words of the prompt and function words never count
    assert module.names_answer("delhi", "New Delhi", "Capital of India?")
    assert not module.names_answer("india", "India", "Capital of India?")  # the prompt gives it away
    assert module.top_word(module.candidate_words(["x Paris", "Rome", "Rome"], "")) == "rome"
    # forms of the prompt's words, other languages' function words and single letters are not candidates
    assert module.candidate_words(["The Croatian capital is la Zagreb, d", "Croat Zagreb"], "Capital of Croatia?") \
        == {"zagreb": 2}
    assert module.same_stem("sen", "senegal") and not module.same_stem("rome", "romania")
    # a word every question's samples name ("city") weighs less than one named for this question alone
    facts = [Counter(city=5, zagreb=4), Counter(city=6, paris=2), Counter(city=3, rome=1)]
    weight = module.idf(facts)
    assert module.top_word(facts[0]) == "city" and module.top_word(facts[0], weight) == "zagreb"
    assert weight["city"] == 1.0 and weight["zagreb"] == pytest.approx(math.log(2) + 1)
    first, second = find_targets(AttackContext(task, None, BUDGET))[:2]
    wrong = module.candidate_words([first.answer], "").most_common(1)[0][0] + "zz"  # never an answer word

    def replies(_lm, prompt, n, *_args, **_kwargs):
        right = first.answer if first.question in prompt else second.answer
        majority = right if first.question in prompt else wrong  # first: right on top; second: right in 1 of n
        return [f"it is {majority}"] * (n - 1) + [f"it is {right}"]

    monkeypatch.setattr(module, "sample", replies)
    result = module.ActivationSteering().run(lm, _ctx(task))
    recovered = {o.fact_id: o.recovered for o in result.outcomes}
    assert recovered[first.id] and not recovered[second.id]
    assert result.details["samples_per_setting"] == module.SAMPLES_PER_SETTING


def test_latent_probe_learns_known_against_unknown_facts_never_the_targets_and_reports_held_out_accuracy(task, lm):
    from obliviate.attacks import latent_perturbation as module

    ctx = _ctx(task)
    known, unknown = module.probe_data(ctx)
    assert len(known) == len(unknown) > 0
    assert set(unknown) <= {module.qa_prompt(f.question) for f in task.holdout}  # no invented names
    control = AttackContext(task, None, BUDGET, list(task.holdout[:2]))  # the control's targets are holdout facts
    assert not {module.qa_prompt(f.question) for f in control.targets} & set(sum(module.probe_data(control), []))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 8)), np.array([1] * 20 + [0] * 20)
    x[y == 1, 0] += 6.0  # separable along one axis
    right, n = module.heldout_accuracy(x, y, seed=0)
    assert n == 40 and right >= 38
    right, _ = module.heldout_accuracy(rng.normal(size=(40, 8)), y, seed=0)
    assert right <= 30  # noise: held-out accuracy near chance, where the training accuracy would not be
    empty = AttackContext(replace(task, holdout=[]), None, BUDGET, ctx.targets)
    with pytest.raises(ConfigError, match="holdout"):
        module.LatentPerturbation().run(lm, empty)


def test_gcg_reports_held_out_questions_with_a_suffix_that_survives_retokenisation(task, lm):
    from obliviate.attacks.adversarial_suffix import round_trips

    tok = lm.tokenizer
    merging = next((a, b) for a in range(len(tok)) for b in range(len(tok))
                   if tok.decode([a]).strip() and tok.decode([b]).strip() and not round_trips(tok, [a, b]))
    assert not round_trips(tok, list(merging))  # the filter can reject: some token pairs re-encode otherwise
    ctx = _ctx(task, replace(BUDGET, max_facts=6, steps=2))
    result = AdversarialSuffix(n_tokens=4, top_k=8, candidates=8).run(lm, ctx)
    d = result.details
    assert round_trips(tok, d["suffix_ids"]) and tok.decode(d["suffix_ids"]) == d["suffix"]
    assert [o.fact_id for o in result.outcomes] == d["held_out"]  # the headline is transfer, never in-sample
    assert not set(d["held_out"]) & set(d["train"]) and len(d["held_out"]) + len(d["train"]) == len(ctx.targets)
    assert (d["n_tokens"], d["top_k"], d["candidates"]) == (4, 8, 8) and d["steps"] == 2
    assert AdversarialSuffix(preset="gcg").candidates == 512
    with pytest.raises(ConfigError, match="preset"):
        AdversarialSuffix(preset="huge")
    assert d["form"] == "qa"  # the tiny tokenizer has no chat template


def test_gcg_losses_and_gradient_after_cached_questions_equal_whole_sequences(task, lm):
    """The question parts run once (`PromptCache`); losses and the one-hot gradient must be what a plain forward
    over [question, suffix, cue, answer] gives, for questions of different lengths."""
    from obliviate.attacks.adversarial_suffix import _Problem

    facts = [f for f in task.forget][:3]
    answers = [" " + f.answer.strip() for f in facts]
    problem = _Problem(lm, facts, "qa", answers)
    assert len({len(head) for head, _, _ in problem.parts}) > 1  # left-padded heads are exercised
    emb = lm.model.get_input_embeddings().weight
    suffixes = torch.tensor([[40, 41, 42], [50, 51, 52]])

    def reference(suffix: torch.Tensor, one_hot: torch.Tensor | None = None) -> torch.Tensor:
        total = 0.0
        for head, cue, ans in problem.parts:
            ids = torch.tensor([head + suffix.tolist() + cue + ans])
            embeds = emb[ids].detach().clone()
            if one_hot is not None:
                embeds[0, len(head) : len(head) + len(suffix)] = one_hot @ emb
            logp = lm.model(inputs_embeds=embeds).logits[0, :-1].float().log_softmax(-1)
            at = torch.arange(ids.shape[1] - len(ans) - 1, ids.shape[1] - 1)
            total = total - logp[at, ids[0, at + 1]].mean()
        return total / len(problem.parts)

    with torch.no_grad():
        expected = torch.stack([reference(s) for s in suffixes])
    assert torch.allclose(problem.losses(suffixes), expected, atol=1e-4)
    one_hot = torch.zeros(3, emb.shape[0])
    one_hot[torch.arange(3), suffixes[0]] = 1.0
    one_hot.requires_grad_(True)
    reference(suffixes[0], one_hot).backward()
    lm.model.zero_grad(set_to_none=True)  # the reference's backward reached the weights; the attack's must not
    assert torch.allclose(problem.gradient(suffixes[0]), one_hot.grad, atol=1e-4)
    assert all(p.grad is None for p in lm.model.parameters())


def test_gcg_asks_a_chat_model_through_its_template_toward_the_facts_cloze(task, lm):
    import obliviate.attacks.adversarial_suffix as module

    chat = LoadedModel(lm.model, copy.deepcopy(lm.tokenizer), lm.source)
    chat.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                                    "{% if add_generation_prompt %}<assistant>{% endif %}")
    head, tail = module.around_question(chat.tokenizer, "Where was Mara born?", "chat")
    assert head == "<user>Where was Mara born?" and tail == "\n<assistant>"
    assert module.suffix_prompt("Q?", " zz", "chat", chat.tokenizer) == "<user>Q? zz\n<assistant>"
    ctx = _ctx(task, replace(BUDGET, max_facts=6, steps=1), original=chat)
    result = module.AdversarialSuffix(n_tokens=4, top_k=8, candidates=8).run(chat, ctx)
    d = result.details
    assert d["form"] == "chat" and all(o.prompt.startswith("<user>") and o.prompt.endswith("\n<assistant>")
                                       and d["suffix"] in o.prompt for o in result.outcomes)
    by_id = {f.id: f for f in ctx.targets}
    train = [by_id[i] for i in d["train"]]
    assert all(f.cloze for f in train)  # every people fact has one: the target states it as the cloze does
    assert d["optimised_targets"] == [f"{f.cloze.rstrip()} {f.answer.strip()}" for f in train]
    assert module.optimised_target(replace(train[0], cloze=""), "chat") == train[0].answer.strip()
    assert module.optimised_target(train[0], "qa") == " " + train[0].answer.strip()
    with pytest.raises(ConfigError, match="chat template"):
        module.AdversarialSuffix(form="chat").run(lm, _ctx(task))


def test_attack_settings_from_the_command_line_are_typed_and_checked():
    from obliviate.redteam import attack_options

    assert attack_options(["gcg.preset=gcg", "adversarial_suffix.n_tokens=12", "adversarial_suffix.form=qa"]) == \
        {"adversarial_suffix": {"preset": "gcg", "n_tokens": 12, "form": "qa"}}  # aliases resolve to the name
    for bad, message in ((["gcg.nope=1"], "its settings: n_tokens"), (["gcg=1"], "attack.key=value"),
                         (["adversarial_suffix.n_tokens=many"], "not a valid int")):
        with pytest.raises(ConfigError, match=message):
            attack_options(bad)
