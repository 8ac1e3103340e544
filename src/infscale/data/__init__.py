"""Bundled training-run datasets, looked up by name.

Each entry names its file (beside this module), the mapping of its columns onto the canonical `Runs` columns, the default
fit/held-out split, and its source and licence (also written in SOURCE.md beside the files). Standard library only
(and the shared `infscale.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infscale.registry import Registry

DATA_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetInfo:
    name: str
    """Registry name, e.g. `bian2025`."""
    file: str
    """File name inside infscale/data/."""
    description: str
    source: str
    licence: str
    columns: dict[str, str] = field(default_factory=dict)
    """Canonical column -> column of the file, for columns the alias table would not find (or would pick wrongly)."""
    default_fit_on: str | None = None
    """pandas-query expression selecting the default fit set; the other rows are held out."""
    default_law: str = "chinchilla"

    @property
    def path(self) -> Path:
        return DATA_DIR / self.file


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register(info: DatasetInfo) -> None:
    DATASETS.register(info.name, info)


register(DatasetInfo(
    name="bian2025",
    file="bian2025_morph_runs.csv",
    description="Bian et al. 2025 (Morph-1B): 76 runs, 36 shapes 80M-1B, 20/40/160 tokens per param",
    source="github.com/Waterpine/open-lm-morph (arXiv 2501.18107)",
    licence="MIT",
    columns={"N": "params_N_formula", "D": "tokens_D", "group": "size_group"},
    default_fit_on="in_main_fit_set == 1",
    default_law="inference_aware",
))
register(DatasetInfo(
    name="chinchilla",
    file="chinchilla_kyotakano.csv",
    description="Hoffmann et al. 2022 runs read from the paper's figure (kyo-takano/chinchilla)",
    source="github.com/kyo-takano/chinchilla",
    licence="Apache-2.0",
    default_law="chinchilla",
))
register(DatasetInfo(
    name="gadre",
    file="gadre2024_openlm_104_runs.csv",
    description="Gadre et al. 2024 open_lm runs, 3 datasets, 5-640 tokens per param, C4 validation loss",
    source="github.com/mlfoundations/scaling",
    licence="MIT",
    columns={"loss": "loss_c4_val", "group": "model_name", "tokens_per_param": "tok_mult_M"},
    default_law="gadre",
))
register(DatasetInfo(
    name="sardana",
    file="sardana2024_mpt_47_runs.csv",
    description="Sardana et al. 2024 MPT runs at 10-10,000 tokens per param",
    source="Sardana et al., Beyond Chinchilla-Optimal (ICML 2024)",
    licence="Apache-2.0",
    columns={"group": "Model Name", "tokens_per_param": "Tokens/Params"},
    default_law="chinchilla",
))


def get_dataset(name: str) -> DatasetInfo:
    """The registered dataset ``name``; an unknown name is an `InputError` listing the known ones."""
    return DATASETS.get(name)
