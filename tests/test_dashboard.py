"""The models dashboard and one model's page."""

import json
import re

from conftest import SMALL_CLASSES


def set_accuracy(models_dir, name, accuracy):
    path = models_dir / f"{name}.json"
    card = json.loads(path.read_text())
    card["evaluation"]["accuracy"] = accuracy
    path.write_text(json.dumps(card))


def test_dashboard_lists_models_best_first(client, models_dir):
    set_accuracy(models_dir, "tiny", 0.91)
    set_accuracy(models_dir, "small", 0.42)
    page = client.get("/models").get_data(as_text=True)
    assert page.index(">tiny</a>") < page.index(">small</a>")
    for heading in ("Architecture", "Data set", "Parameters", "File size", "Epochs", "Training time",
                    "Accuracy", "Precision", "Recall", "F1", "Loss"):
        assert f">{heading}</th>" in page
    assert "91.0%" in page and "42.0%" in page
    # The figures first, where a phone shows them without scrolling sideways.
    headings = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', page)
    assert headings[:3] == ["Model", "Accuracy", "Loss"]

    set_accuracy(models_dir, "small", 0.95)
    page = client.get("/models").get_data(as_text=True)
    assert page.index(">small</a>") < page.index(">tiny</a>")


def test_dashboard_lists_unavailable_models_with_reason(client, models_dir):
    (models_dir / "broken.h5").write_bytes(b"not hdf5")
    (models_dir / "broken.json").write_text((models_dir / "tiny.json").read_text())
    (models_dir / "orphan.h5").write_bytes((models_dir / "tiny.h5").read_bytes())
    page = client.get("/models").get_data(as_text=True)
    assert "Unavailable" in page
    assert "broken.h5 is not an HDF5 model file" in page
    assert "no metrics card (orphan.json)" in page
    assert str(models_dir) not in page


def test_model_page_has_card_curves_per_class_and_heat_map(client):
    response = client.get("/models/small")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count("<svg") == 2  # loss and accuracy
    assert page.count('<polyline class="line series-') == 4  # training and validation, each
    assert "training" in page and "validation" in page
    for label in SMALL_CLASSES:
        assert f'<th scope="row">{label}</th>' in page  # per-class table and matrix rows
        assert f"<span>{label}</span>" in page  # matrix columns
    assert len(re.findall(r'class="heat heat-\d+', page)) == len(SMALL_CLASSES) ** 2
    assert page.count(" diagonal") == len(SMALL_CLASSES)
    assert "batch_size" in page  # hyperparameters
    # Tables scroll inside their card rather than widen a phone's page.
    assert page.count('<div class="table-scroll">\n  <table') == page.count("<table") == 3
    # A text alternative to each chart, and why its loss is not the Evaluation table's.
    text = " ".join(page.split())
    assert "Training: best and final 0.6000 at epoch 6. Validation: best and final 0.9000 at epoch 6." in text
    assert "Training: best and final 80.0% at epoch 6. Validation: best and final 70.0% at epoch 6." in text
    assert "The Evaluation table's loss is plain cross-entropy" in text


def test_a_confusion_matrix_too_big_to_read_is_left_out(client, models_dir, monkeypatch):
    monkeypatch.setattr("webapp.dashboard.MAX_HEAT_MAP_CLASSES", len(SMALL_CLASSES) - 1)
    page = client.get("/models/small").get_data(as_text=True)
    assert "Confusion matrix" not in page
    assert all(f'<th scope="row">{label}</th>' in page for label in SMALL_CLASSES)  # the per-class table


def test_model_page_for_card_without_figures(client, models_dir):
    path = models_dir / "tiny.json"
    path.write_text(json.dumps({"classes": ["a", "b", "c"], "input_shape": [16, 16, 3], "history": {"loss": [None, "x"]}}))
    page = client.get("/models/tiny").get_data(as_text=True)
    assert "<svg" not in page and "heat-" not in page
    assert "\u2014" in page  # missing values as dashes
    assert ">tiny</a>" in client.get("/models").get_data(as_text=True)


def test_pages_for_a_card_with_figures_beyond_any_float(client, models_dir):
    path = models_dir / "tiny.json"
    card = json.loads(path.read_text())
    huge = 10**400  # JSON allows it and Python reads it as an int, which no float holds
    card["evaluation"]["accuracy"] = card["training_seconds"] = huge
    card["history"]["loss"][0] = huge
    card["evaluation"]["confusion_matrix"][0] = [huge, 1, 2]
    path.write_text(json.dumps(card))
    for url in ("/models", "/models/tiny"):
        response = client.get(url)
        assert response.status_code == 200 and "\u2014" in response.get_data(as_text=True)


def test_model_page_for_unavailable_model_shows_reason(client, models_dir):
    (models_dir / "tiny.json").write_text("{not json")
    page = client.get("/models/tiny").get_data(as_text=True)
    assert "Unavailable: metrics card tiny.json is unreadable" in page


def test_unknown_model_page_is_404(client):
    response = client.get("/models/nope")
    assert response.status_code == 404
    assert "Unknown model &#39;nope&#39;." in response.get_data(as_text=True)


def test_model_page_shows_test_evaluation_beside_held_out(client, models_dir):
    path = models_dir / "tiny.json"
    card = json.loads(path.read_text())
    card["test_evaluation"] = dict(card["evaluation"], accuracy=0.5432)
    path.write_text(json.dumps(card))
    page = client.get("/models/tiny").get_data(as_text=True)
    assert ">Held-out</th>" in page and ">Test</th>" in page and "54.3%" in page
