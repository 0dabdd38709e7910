#!/usr/bin/env python3
"""Train the inference service's model versions and export them to ONNX.

Why this exists: the inference service serves ONNX through tract, and the canary
machinery needs at least two real, different model versions to move between. This
script is the only producer of `workloads/inference/models/<version>/`; rerunning it
gives byte-identical ONNX files for the same library versions (fixed seeds, fixed
split), so the committed sha256 values can be checked by anyone.

Dataset: scikit-learn's bundled Wisconsin breast cancer set (569 rows, 30 numeric
features, 2 classes), so nothing is downloaded at training time.

Layout written per version (the seed's `<version>/model.* + metadata.json`):
    model.onnx     LinearClassifier / MLP graph, float32 input [N, 30], no ZipMap
                   (tract cannot run ZipMap), outputs `label` (int64 [N]) and
                   `probabilities` (float32 [N, 2])
    metadata.json  version, sha256 of model.onnx, input width, feature names,
                   class labels, training metrics, trained date
    heldout.json   held-out rows with scikit-learn's predictions and probabilities,
                   used by the Rust parity test

Usage (from the repo root):
    python3 -m venv workloads/inference/training/.venv
    workloads/inference/training/.venv/bin/pip install -r workloads/inference/training/requirements.txt
    workloads/inference/training/.venv/bin/python workloads/inference/training/train.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib

import numpy as np
import onnx
import onnx.numpy_helper
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 20240611
# A fixed "trained date" keeps the metadata reproducible; bump it when retraining on
# purpose. Wall-clock time here would make every rerun a diff.
TRAINED_DATE = "2026-11-27"
DATASET = "sklearn.datasets.load_breast_cancer"


def versions() -> dict[str, tuple[str, Pipeline]]:
    """The model versions we publish. v1 is the stable baseline; v2 the canary."""
    return {
        "v1": (
            "StandardScaler + LogisticRegression(C=1.0)",
            Pipeline(
                [
                    ("scale", StandardScaler()),
                    ("clf", LogisticRegression(C=1.0, max_iter=5000, random_state=SEED)),
                ]
            ),
        ),
        "v2": (
            "StandardScaler + MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-3)",
            Pipeline(
                [
                    ("scale", StandardScaler()),
                    (
                        "clf",
                        MLPClassifier(
                            hidden_layer_sizes=(16,),
                            alpha=1e-3,
                            max_iter=2000,
                            random_state=SEED,
                        ),
                    ),
                ]
            ),
        ),
    }


def replace_scaler_nodes(model: onnx.ModelProto) -> None:
    """Rewrite ai.onnx.ml `Scaler` nodes as standard `Sub` + `Mul`.

    tract 0.23 does not implement the ONNX-ML Scaler operator that skl2onnx emits for
    StandardScaler. `Scaler` computes `(x - offset) * scale`, which standard ONNX ops
    express exactly, so the graph stays equivalent and tract can run it.
    """
    graph = model.graph
    new_nodes = []
    for node in graph.node:
        if node.op_type != "Scaler":
            new_nodes.append(node)
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        offset_name = f"{node.name}_offset"
        scale_name = f"{node.name}_scale"
        centred = f"{node.name}_centred"
        graph.initializer.extend(
            [
                onnx.numpy_helper.from_array(
                    np.asarray(attrs["offset"], dtype=np.float32), offset_name
                ),
                onnx.numpy_helper.from_array(
                    np.asarray(attrs["scale"], dtype=np.float32), scale_name
                ),
            ]
        )
        new_nodes.append(
            onnx.helper.make_node(
                "Sub", [node.input[0], offset_name], [centred], name=f"{node.name}_sub"
            )
        )
        new_nodes.append(
            onnx.helper.make_node(
                "Mul", [centred, scale_name], [node.output[0]], name=f"{node.name}_mul"
            )
        )
    del graph.node[:]
    graph.node.extend(new_nodes)


def main() -> None:
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=here.parent / "models")
    parser.add_argument("--heldout-rows", type=int, default=40)
    args = parser.parse_args()

    data = load_breast_cancer()
    x = data.data.astype(np.float64)
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=SEED, stratify=y
    )
    # The service computes in float32; sklearn in float64. Feeding sklearn the
    # float32-rounded rows makes the parity test compare like with like.
    x_test32 = x_test.astype(np.float32)

    for version, (description, pipe) in versions().items():
        pipe.fit(x_train, y_train)
        proba = pipe.predict_proba(x_test32.astype(np.float64))
        pred = pipe.predict(x_test32.astype(np.float64))
        metrics = {
            "accuracy": round(float(accuracy_score(y_test, pred)), 6),
            "f1": round(float(f1_score(y_test, pred)), 6),
            "roc_auc": round(float(roc_auc_score(y_test, proba[:, 1])), 6),
            "log_loss": round(float(log_loss(y_test, proba)), 6),
            "test_rows": int(len(y_test)),
            "train_rows": int(len(y_train)),
        }

        onx = convert_sklearn(
            pipe,
            name=f"breast-cancer-{version}",
            initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
            options={id(pipe): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        # Stable bytes: no producer version noise beyond the libraries pinned below.
        onx.doc_string = ""
        replace_scaler_nodes(onx)
        model_bytes = onx.SerializeToString()
        onnx.checker.check_model(onx)

        out = args.out / version
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.onnx").write_bytes(model_bytes)
        metadata = {
            "version": version,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "format": "onnx",
            "algorithm": description,
            "input_width": int(x.shape[1]),
            "feature_names": [str(n) for n in data.feature_names],
            "class_labels": [int(c) for c in pipe.classes_],
            "class_names": [str(data.target_names[c]) for c in pipe.classes_],
            "metrics": metrics,
            "trained_date": TRAINED_DATE,
            "training_data": DATASET,
            "seed": SEED,
            "libraries": {
                "scikit-learn": sklearn.__version__,
                "skl2onnx": skl2onnx.__version__,
                "onnx": onnx.__version__,
            },
        }
        (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")

        n = min(args.heldout_rows, len(x_test32))
        heldout = {
            "version": version,
            "rows": [
                {
                    "features": [float(v) for v in x_test32[i]],
                    "prediction": int(pred[i]),
                    "probabilities": [float(p) for p in proba[i]],
                    "truth": int(y_test[i]),
                }
                for i in range(n)
            ],
        }
        (out / "heldout.json").write_text(json.dumps(heldout, indent=1) + "\n")
        print(f"{version}: {description} -> {out} {metrics} sha256={metadata['sha256']}")


if __name__ == "__main__":
    main()
