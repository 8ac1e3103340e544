"""The one way a report figure is finished: an optional overall title, a tight layout, the PNG written (its folder
made) and the figure closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: str | Path, *, title: str = "", dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` as a PNG and close it; returns the path."""
    import matplotlib.pyplot as plt  # lazy: matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
