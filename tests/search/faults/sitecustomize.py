"""Faults injected into real worker processes (put this folder on PYTHONPATH and point
INCEPTION_TEST_FAULTS at an empty folder): across all processes of a study, the first training
run gets a learning rate of 1e6, so its loss really becomes NaN, and the second runs out of
memory. A marker file per fault makes each happen exactly once, whichever worker gets it."""

import os

if os.environ.get("INCEPTION_TEST_FAULTS"):
    from pathlib import Path

    import torch

    import search.training.trainer

    _real_fit = search.training.trainer.Trainer.fit

    def _claim(name: str) -> bool:
        try:
            os.close(os.open(Path(os.environ["INCEPTION_TEST_FAULTS"]) / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _fit_with_faults(self, model, **kwargs):
        if _claim("nan"):
            import copy
            import dataclasses

            self = copy.copy(self)
            self.cfg = dataclasses.replace(self.cfg, lr=1e6)
        elif _claim("oom"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return _real_fit(self, model, **kwargs)

    search.training.trainer.Trainer.fit = _fit_with_faults
