"""The peers sktriplet is measured against, each behind the same small interface.

Every peer is a function ``(X_train, y_train, config) -> embed`` that fits on the
training part and returns a function embedding new rows.  Optional peers import
their library inside the function and raise ``ImportError`` when it is missing
(install them with ``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NeighborhoodComponentsAnalysis

from sktriplet import TripletEmbedder


def raw(X, y, cfg):
    return lambda Z: Z


def pca(X, y, cfg):
    return PCA(n_components=cfg["dim"], random_state=cfg["seed"]).fit(X).transform


def nca(X, y, cfg):
    model = NeighborhoodComponentsAnalysis(
        n_components=cfg["dim"], random_state=cfg["seed"]
    )
    return model.fit(X, y).transform


def sktriplet(X, y, cfg):
    return TripletEmbedder(random_state=cfg["seed"]).fit(X, y).transform


def umap_supervised(X, y, cfg):
    import umap

    model = umap.UMAP(n_components=cfg["dim"], random_state=cfg["seed"], n_jobs=1)
    return model.fit(X, y).transform


def _metric_learn_on_new_sklearn():
    """Let metric-learn 0.7.0 run on scikit-learn >= 1.8.

    metric-learn passes ``force_all_finite`` to ``check_array`` and
    ``check_X_y``; scikit-learn 1.6 renamed it ``ensure_all_finite`` and 1.8
    removed the old name.  Only the keyword changes; the check is the same.
    """
    from metric_learn import _util

    def renamed(check):
        def call(*args, force_all_finite=None, **kwargs):
            if force_all_finite is not None:
                kwargs.setdefault("ensure_all_finite", force_all_finite)
            return check(*args, **kwargs)

        call.__wrapped__ = check
        return call

    for name in ("check_array", "check_X_y"):
        check = getattr(_util, name)
        if not hasattr(check, "__wrapped__"):
            setattr(_util, name, renamed(check))


def lmnn(X, y, cfg):
    from metric_learn import LMNN

    _metric_learn_on_new_sklearn()
    model = LMNN(n_neighbors=3, n_components=cfg["dim"], random_state=cfg["seed"])
    return model.fit(X, y).transform


def pytorch_metric_learning(X, y, cfg):
    """TripletMarginLoss + semihard TripletMarginMiner + MPerClassSampler, same MLP.

    ``cfg["hidden"]`` is one hidden width or a tuple of them; ``cfg["m"]``, if
    given, the samples per class in a batch.
    """
    import torch
    from pytorch_metric_learning import losses, miners, samplers

    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    widths = [X.shape[1], *np.atleast_1d(cfg["hidden"]).tolist()]
    layers = []
    for width_in, width_out in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(width_in, width_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], cfg["dim"]))
    loss_fn = losses.TripletMarginLoss(margin=0.2)
    miner = miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y)
    # m per class: a power of two (PML needs m to divide the batch) with
    # m * classes >= batch.
    m = cfg.get("m") or max(
        4, 2 ** int(np.ceil(np.log2(cfg["batch"] / len(np.unique(y)))))
    )
    sampler = samplers.MPerClassSampler(
        y, m=m, batch_size=cfg["batch"], length_before_new_iter=len(y)
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(Xt, yt), batch_size=cfg["batch"], sampler=sampler
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(cfg["epochs"]):
        for xb, yb in loader:
            emb = net(xb)
            loss = loss_fn(emb, yb, miner(emb, yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()

    def embed(Z):
        with torch.no_grad():
            out = net(torch.as_tensor(Z, dtype=torch.float32))
            return torch.nn.functional.normalize(out, dim=1).numpy()

    return embed


def seed_recipe(X, y, cfg):
    """The Keras example's recipe: a three-input Siamese network on random triplets.

    The same MLP; each epoch draws, for every training sample as anchor, one random
    positive and one random negative; the loss is the example's
    ``max(||a - p||^2 - ||a - n||^2 + 0.5, 0)``, trained with Adam.
    """
    import keras
    from keras import ops

    keras.utils.set_random_seed(cfg["seed"])
    inputs = keras.Input((X.shape[1],))
    h = keras.layers.Dense(cfg["hidden"], activation="relu")(inputs)
    embedding = keras.Model(inputs, keras.layers.Dense(cfg["dim"])(h))

    anchor, positive, negative = (keras.Input((X.shape[1],)) for _ in range(3))
    ea, ep, en = embedding(anchor), embedding(positive), embedding(negative)
    ap = ops.sum(ops.square(ea - ep), axis=1)
    an = ops.sum(ops.square(ea - en), axis=1)
    siamese = keras.Model([anchor, positive, negative], ops.relu(ap - an + 0.5))
    siamese.compile(optimizer=keras.optimizers.Adam(1e-3), loss=lambda _, hinge: hinge)

    rng = np.random.RandomState(cfg["seed"])
    classes, codes = np.unique(y, return_inverse=True)
    members = [np.flatnonzero(codes == c) for c in range(len(classes))]
    X32 = X.astype(np.float32)

    def draw(wanted):  # one random member of class wanted[i] for each i
        out = np.empty(len(wanted), dtype=np.intp)
        for c, rows in enumerate(members):
            mask = wanted == c
            out[mask] = rng.choice(rows, mask.sum())
        return out

    for _ in range(cfg["epochs"]):
        pos = draw(codes)
        neg = draw((codes + rng.randint(1, len(classes), len(codes))) % len(classes))
        siamese.fit(
            [X32, X32[pos], X32[neg]],
            np.zeros(len(y)),
            batch_size=cfg["batch"],
            epochs=1,
            verbose=0,
        )
    return lambda Z: np.asarray(embedding(Z.astype(np.float32)))


def with_epochs(fit, epochs):
    """``fit`` with its network trained for ``epochs`` instead of the config's."""

    def fit_longer(X, y, cfg):
        return fit(X, y, {**cfg, "epochs": epochs})

    return fit_longer


# sktriplet's epoch budget at its defaults: the network peers also run with it,
# so that every network gets as many passes as sktriplet may take.
BUDGET = TripletEmbedder().epochs

PEERS = {
    "raw": raw,
    "PCA": pca,
    "NCA": nca,
    "UMAP (supervised)": umap_supervised,
    "LMNN": lmnn,
    "pytorch-metric-learning": pytorch_metric_learning,
    f"pytorch-metric-learning, {BUDGET} epochs": with_epochs(
        pytorch_metric_learning, BUDGET
    ),
    "seed recipe (Keras)": seed_recipe,
    f"seed recipe (Keras), {BUDGET} epochs": with_epochs(seed_recipe, BUDGET),
}
NEURAL = {name for name in PEERS if name.startswith(("pytorch", "seed"))}
BUDGET_MATCHED = {name for name in PEERS if name.endswith(f", {BUDGET} epochs")}
