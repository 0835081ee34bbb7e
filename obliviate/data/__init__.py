"""Data: the Fact/Task model, prompt forms, loaders and the built-in tasks."""

from obliviate.data.forms import FORMS, Probe, all_probes, probes
from obliviate.data.io import load_documents, load_facts, load_hf_dataset, load_task, load_tofu, save_facts
from obliviate.data.people import CONFIGS as PEOPLE_CONFIGS
from obliviate.data.people import PeopleConfig, people_task, teach_facts
from obliviate.data.realfacts import real_facts, realfacts_task, verify_known
from obliviate.data.schema import SPLITS, Document, Fact, MultipleChoice, Statement, Task, TwoHop, fact_from_dict
from obliviate.data.tasks import list_tasks
from obliviate.data.tasks import load as load_task_spec

__all__ = [
    "FORMS", "PEOPLE_CONFIGS", "SPLITS", "Document", "Fact", "MultipleChoice", "PeopleConfig", "Probe", "Statement",
    "Task", "TwoHop", "all_probes", "fact_from_dict", "list_tasks", "load_documents", "load_facts", "load_hf_dataset",
    "load_task", "load_task_spec", "load_tofu", "people_task", "probes", "real_facts", "realfacts_task",
    "save_facts", "teach_facts", "verify_known",
]
