"""What the state-space members' tests share: one step's idle weights, and a short pretraining."""

import pandas as pd
import torch


def idle_weights(model, samples: int) -> list[str]:
    """The parameters one training step on random 12-lead input leaves without a gradient."""
    model.train()
    model(torch.randn(4, 12, samples), torch.arange(12))["loss"].backward()
    return [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]


def short_pretraining(store, out, name: str):
    """60 steps of ``lamae pretrain --model name`` on the test store; the logged losses."""
    from lamae.train.pretrain import PretrainConfig, pretrain

    pretrain(PretrainConfig(store=str(store.path), out=str(out), architecture=name, steps=60, batch_size=16,
                            base_lr=0.024, warmup_steps=5, checkpoint_every=1000, log_every=5), progress=False)
    return pd.read_csv(out / "loss.csv")["loss"].to_numpy()


def check_a_subset_is_the_twelve_with_the_rest_absent(model, x):
    """Three leads given, or all twelve with the others marked absent: the same embedding, and
    lead weights uniform over the three."""
    some = torch.tensor([7, 0, 1])
    subset, w = model.embed(x[:, some], some)
    present = torch.zeros(x.shape[0], 12, dtype=torch.bool)
    present[:, some] = True
    masked, _ = model.embed(x, torch.arange(12), present)
    torch.testing.assert_close(subset, masked, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w, torch.full((x.shape[0], 3), 1 / 3))
    full, _ = model.embed(x, torch.arange(12))
    assert not torch.allclose(subset, full)


def check_it_pretrains_loads_and_rebuilds_a_lead(store, out, name: str, class_name: str, encoder: str,
                                                 fall: float = 0.8):
    """60 steps of ``lamae pretrain --model name`` lower the loss below ``fall`` of where it
    started; the checkpoint loads as ``class_name``; ``lamae reconstruct`` rebuilds lead III
    from the other eleven."""
    from lamae.api import load
    from lamae.checkpoint import load_checkpoint
    from lamae.leads import STANDARD_LEADS

    loss = short_pretraining(store, out, name)
    assert loss[-3:].mean() < fall * loss[:3].mean(), loss
    model, config = load_checkpoint(out)
    assert type(model).__name__ == class_name and config["model"]["encoder"] == encoder
    ecg = store.batch(store.rows("test")[:1], "cpu")[0][0].numpy()
    rebuilt = load(out).reconstruct(ecg, 100.0, list(STANDARD_LEADS), hide=["III"])
    assert rebuilt.reconstruction.shape == ecg.shape and set(rebuilt.errors) == {"III"}
    assert "III" not in rebuilt.inputs and len(rebuilt.inputs) == 11
