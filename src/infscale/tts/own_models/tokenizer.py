"""A character tokenizer for the project's own small policy and PRM (the step tag ``ки`` is one token).

Ids: 0 ``<pad>``, 1 ``<bos>``, 2 ``<eos>``, 3 ``<unk>``, 4 the step tag, then printable ASCII. Deterministic, no
training, no files: the checkpoints store only its name (``char-v1``).
"""

from __future__ import annotations

import string

from infscale.tts.core.tasks import STEP_TAG

PAD, BOS, EOS, UNK, TAG = 0, 1, 2, 3, 4
_CHARS = [c for c in string.printable if c not in "\r\x0b\x0c"]


class CharTokenizer:
    name = "char-v1"

    def __init__(self) -> None:
        self.itos = ["<pad>", "<bos>", "<eos>", "<unk>", STEP_TAG, *_CHARS]
        self.stoi = {c: i for i, c in enumerate(self.itos) if i > TAG}
        self.pad_id, self.bos_id, self.eos_id, self.tag_id = PAD, BOS, EOS, TAG

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str, bos: bool = False) -> list[int]:
        ids = [BOS] if bos else []
        get = self.stoi.get
        for k, part in enumerate(text.split(STEP_TAG)):
            if k:
                ids.append(TAG)
            ids += [get(ch, UNK) for ch in part]
        return ids

    def step_positions(self, ids: list[int], n_steps: int) -> list[int]:
        """Where a PRM reads the reward of each of ``n_steps`` steps in ``ids``: at its step tag, and at the final
        token for a last step without one (the answer line). The one rule for training and scoring."""
        pos = [i for i, t in enumerate(ids) if t == TAG]
        if len(pos) < n_steps:
            pos.append(len(ids) - 1)
        return pos[:n_steps]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.itos[i] for i in ids if i > UNK or i == TAG)

    def token_text(self, i: int) -> str:
        return self.itos[i] if i > UNK or i == TAG else ""
