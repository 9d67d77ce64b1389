"""A no-op architecture for measuring the runner's own cost: `"architecture": "noop:train"`."""


def train(params, ctx):
    return {"val_mse": float(params.get("i", 0))}


def call(i):
    """The same work as a plain function, for the ProcessPoolExecutor baseline."""
    return {"val_mse": float(i)}
