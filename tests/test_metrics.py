import numpy as np
import pytest
from sklearn import metrics as sk

from trainer.metrics import classification_report, confusion_matrix, format_report

CLASSES = ["cat", "dog", "ship", "frog"]


@pytest.fixture
def predictions():
    """Known labels and probabilities; "frog" is never predicted, to exercise zero division."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, 200)
    probabilities = rng.dirichlet(np.ones(4), 200)
    probabilities[:, 3] = 0.0
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return labels, probabilities


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")  # clipped like ours, on purpose
def test_report_matches_scikit_learn(predictions):
    labels, probabilities = predictions
    predicted = probabilities.argmax(axis=1)
    report = classification_report(labels, probabilities, CLASSES)

    assert report["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert report["loss"] == pytest.approx(sk.log_loss(labels, np.clip(probabilities, 1e-7, 1), labels=range(4)), rel=1e-3)
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = sk.precision_recall_fscore_support(labels, predicted, average=average, zero_division=0)
        assert report[f"precision_{average}"] == pytest.approx(precision)
        assert report[f"recall_{average}"] == pytest.approx(recall)
        assert report[f"f1_{average}"] == pytest.approx(f1)
    precision, recall, f1, support = sk.precision_recall_fscore_support(labels, predicted, zero_division=0)
    for i, label in enumerate(CLASSES):
        row = report["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[i], recall[i], f1[i]))
        assert row["support"] == support[i]
    assert report["confusion_matrix"] == sk.confusion_matrix(labels, predicted, labels=range(4)).tolist()


def test_macro_averages_leave_out_classes_with_no_images_and_no_predictions():
    # A 5-class model scored on images of 2 classes, once predicting a third.
    labels = np.array([0, 0, 1, 1, 1])
    predicted = np.array([0, 2, 1, 1, 1])
    report = classification_report(labels, np.eye(5)[predicted], list("abcde"))
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = sk.precision_recall_fscore_support(labels, predicted, average=average, zero_division=0)
        assert (report[f"precision_{average}"], report[f"recall_{average}"], report[f"f1_{average}"]) == \
            pytest.approx((precision, recall, f1))
    assert report["recall_macro"] == pytest.approx((0.5 + 1 + 0) / 3)


def test_perfect_predictions():
    labels = np.array([0, 1, 2, 2])
    report = classification_report(labels, np.eye(3)[labels], ["a", "b", "c"])
    assert report["accuracy"] == 1.0 and report["f1_macro"] == 1.0
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]


def test_confusion_matrix_rows_are_true_classes():
    assert confusion_matrix(np.array([0, 0, 1]), np.array([1, 0, 1]), 2).tolist() == [[1, 1], [0, 1]]


def test_format_report_is_a_readable_table(predictions):
    text = format_report(classification_report(*predictions, CLASSES), "Validation")
    assert text.startswith("Validation (200 images)\n")
    assert "precision" in text and "macro avg" in text and "weighted avg" in text
    assert all(label in text for label in CLASSES)
    averages = text.splitlines()[-2:]
    assert [line.split()[:2] for line in averages] == [["macro", "avg"], ["weighted", "avg"]]
    assert all(line.split()[-1] == "200" for line in averages)  # the support: every image


def test_a_perfect_score_has_a_loss_of_zero_not_minus_zero():
    labels = np.array([0, 1])
    assert "loss 0.0000" in format_report(classification_report(labels, np.eye(2)[labels], ["a", "b"]))


def test_classes_neither_shown_nor_predicted_are_left_out_of_the_table_as_of_the_averages():
    # A 4-class model scored on photos of a and b, one b taken for c: d is left out, c stays.
    probabilities = np.eye(4)[[0, 0, 1, 2]]
    text = format_report(classification_report(np.array([0, 0, 1, 1]), probabilities, ["a", "b", "c", "d"]))
    rows = [line.split()[0] for line in text.splitlines()[3:-3]]
    assert rows == ["a", "b", "c"]
    assert text.splitlines()[-1] == "  (1 class of the model left out: no images here, never predicted)"
    assert text.splitlines()[-3].split()[2] == f"{(1 + 1 + 0) / 3:.3f}"  # macro precision over a, b and c


def test_long_class_names_stay_whole_and_the_columns_aligned():
    names = ["golden_retriever_puppy", "golden_retriever_adult", "x" * 60]
    text = format_report(classification_report(np.array([0, 1, 2]), np.eye(3), names))
    rows = text.splitlines()[3:6]
    assert [row.split()[0] for row in rows[:2]] == names[:2]
    assert rows[2].split()[0] == "x" * 39 + "\u2026"  # cut, within the column
    assert len({len(line) for line in text.splitlines()[2:]}) == 1  # header, classes, averages: aligned


def test_the_columns_stay_aligned_for_names_a_terminal_shows_wider_or_narrower():
    # Chinese and Japanese characters and emoji take two columns; a combining accent none.
    dog = "\u72ac"
    names = ["\u732b", "\u30b4\u30fc\u30eb\u30c7\u30f3", "\U0001f41ffish", "cafe\u0301", dog * 30]
    text = format_report(classification_report(np.arange(5), np.eye(5), names))
    rows = text.splitlines()[3:8]
    # The column is 41 wide: padded to it by the columns each name takes on screen.
    for row, name, columns in zip(rows, names, [2, 10, 6, 4]):
        assert row.startswith(f"  {name}{' ' * (41 - columns)}     1.000")
    assert rows[4].startswith(f"  {dog * 19}\u2026       1.000")  # cut to 39 columns, within it
