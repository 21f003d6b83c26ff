"""How many steps SAR's gate needs to open when the anchors alone train the classifier.

SAR pulls features only once *every* anchor is classified correctly with p > update_conf (0.8).
At ImageNet-LT scale that is 1,000 anchors in 2,048 dimensions. This trains SAR's projector and a
linear classifier on the anchor cross-entropy alone (no images: the weakest case, since in a real
run the image loss also trains the classifier, towards the images rather than the anchors) with
the engine's optimizer (SGD, momentum 0.9) and reports the first step at which the gate holds,
with the anchor accuracy and smallest anchor probability along the way.

    python bench/sar_gate_scale.py                          # K=1000, D=2048, lr 0.2 (ImageNet-LT recipe)
    python bench/sar_gate_scale.py --classes 100 --dim 64   # CIFAR-100 with ResNet-32
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn

from lt_bench.methods.sar import SAR


def steps_to_open(
    classes: int,
    dim: int,
    lr: float = 0.2,
    weight_decay: float = 5e-4,
    max_steps: int = 2000,
    seed: int = 0,
    log_every: int = 0,
    detach_classifier: bool = False,
) -> dict:
    """Train projector + classifier on SAR's weighted anchor CE until the gate first holds. With
    ``detach_classifier`` (SAR's disentangled variant) only the projector learns and the classifier
    stays at its initialisation: in a real run images move it, not the anchors."""
    torch.manual_seed(seed)
    sar = SAR(classes, dim, [1] * classes, seed=seed, detach_classifier=detach_classifier)
    classifier = nn.Linear(dim, classes)
    params = [*sar.projector.parameters()]
    if not detach_classifier:
        params += [*classifier.parameters()]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    # The pull needs a batch of features; one dummy feature keeps it out of the measurement.
    features, targets = torch.zeros(1, dim), torch.zeros(1, dtype=torch.long)
    trace, started = [], time.time()
    for step in range(1, max_steps + 1):
        terms = sar(features, None, targets, classifier)
        optimizer.zero_grad(set_to_none=True)
        terms["sar/anchor_ce"].backward()
        optimizer.step()
        if bool(sar.initialised):
            break
        if log_every and step % log_every == 0:
            with torch.no_grad():
                sar.eval()
                prob = torch.softmax(classifier(sar.semantic_anchors()), 1).diagonal()
                sar.train()
            trace.append(
                {
                    "step": step,
                    "anchor_acc": int(sar.anchor_correct) / classes,
                    "min_prob": float(prob.min()),
                }
            )
    opened = bool(sar.initialised)
    return {
        "classes": classes,
        "dim": dim,
        "lr": lr,
        "detach_classifier": detach_classifier,
        "opened": opened,
        "steps": step if opened else None,
        "budget": max_steps,
        "seconds": round(time.time() - started, 1),
        "trace": trace,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument(
        "--detach-classifier", action="store_true", help="train the projector only (pull-only SAR)"
    )
    args = parser.parse_args()
    result = steps_to_open(
        args.classes,
        args.dim,
        args.lr,
        args.weight_decay,
        args.max_steps,
        log_every=args.log_every,
        detach_classifier=args.detach_classifier,
    )
    for row in result["trace"]:
        print(
            f"  step {row['step']:>5}: anchor accuracy {row['anchor_acc']:.3f}, min p {row['min_prob']:.3f}"
        )
    verdict = (
        f"opened at step {result['steps']}"
        if result["opened"]
        else f"did not open in {result['budget']} steps"
    )
    print(
        f"K={args.classes}, D={args.dim}, lr {args.lr}"
        f"{', classifier detached' if args.detach_classifier else ''}: the gate {verdict} ({result['seconds']} s on "
        f"{torch.get_num_threads()} threads)"
    )
    print(json.dumps({k: v for k, v in result.items() if k != "trace"}))


if __name__ == "__main__":
    main()
