"""Command line: `python -m trainer train ...`, `evaluate ...`, `predict ...` and `import ...`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from trainer.formatting import not_installed, one_line, os_reason, percentage, whole_number
from trainer.options import (MAX_NAME_BYTES, OVERRIDES, SCALINGS, UsageError, choice_of, class_names, did_you_mean,
                             image_size, model_name, numbers, recipe)
from trainer.presets import DEFAULT_PRESET, PRESETS


class Terminated(KeyboardInterrupt):
    """SIGTERM, as a process manager or `kill` sends it: a run stops as at a second Ctrl-C, at
    once, and a save under way removes its temporary files on the way out."""


def _terminate(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    # Output into a file on Windows is cp1252, on some servers Latin-1 or ASCII: a class or file
    # name it cannot write ("猫") is escaped, as on stderr, not a traceback after an hour's training.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would answer with the top-level usage, not the command's
        args.parser.error(_unrecognized(unknown, args.parser))
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can handlers be set
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _run(args)
    except KeyboardInterrupt as interrupt:  # also while Keras imports, which takes seconds
        stopped = "Stopped (SIGTERM)" if isinstance(interrupt, Terminated) else "Interrupted"
        saved = getattr(interrupt, "saved", None)  # set by training once the model is in place
        if saved:
            print(f"\n{stopped}, after {saved} was saved.", file=sys.stderr)
        elif args.command is _train:
            print(f"\n{stopped}: nothing was saved in the models folder. Run the same command again to "
                  f"{_resumed_from(interrupt)}.", file=sys.stderr)
        else:
            print(f"\n{stopped}.", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else Python's exit tries the pipe once more
        return 128 + signal.SIGPIPE
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    from trainer.keras_import import BackendError, import_keras

    try:
        import_keras()  # before any module of ours imports it, so that TensorFlow's start-up lines are dropped
        from trainer.data import DataError
        from trainer.importing import ImportRefused
        from trainer.models import WeightsError
        from trainer.train import TrainingError
    except BackendError as error:
        return _error(error)
    except ModuleNotFoundError as error:  # another Python than the project's: Keras or Pillow is missing
        return _error(not_installed(error.name))

    try:
        return args.command(args)
    except (UsageError, DataError, ImportRefused, WeightsError, TrainingError) as error:
        return _error(error)


def _error(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


def _presets_values(key: str) -> str:
    """The presets' values of an option, for its help: " [scratch-small 40, scratch-medium 60]"."""
    shown = {name: _shown(hp[key]) for name, hp in PRESETS.items() if hp.get(key) is not None}
    if not shown:
        return ""
    if len(set(shown.values())) > 1:
        return " [" + ", ".join(f"{name} {value}" for name, value in shown.items()) + "]"
    names = "every preset" if len(shown) == len(PRESETS) else ", ".join(shown)
    return f" [{names}: {next(iter(shown.values()))}]"


def _shown(value) -> str:
    if isinstance(value, list):
        return ",".join(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _unrecognized(unknown: list[str], parser: argparse.ArgumentParser) -> str:
    options = [option for action in parser._actions for option in action.option_strings]
    return "unrecognized arguments: " + " ".join(unknown) + did_you_mean(unknown[0].split("=")[0], options)


def _resumed_from(interrupt: KeyboardInterrupt) -> str:
    """Where a rerun of a training run stopped by `interrupt` goes on from: after training, or
    in a phase, from its backup (`backed_up`: epochs backed up, the phase's epochs, its name)."""
    if getattr(interrupt, "trained", False):
        return "score and save the model without training it again (every epoch had ended and is backed up)"
    backed_up = getattr(interrupt, "backed_up", None)
    if backed_up is None:
        return "resume from the last backed-up epoch (or to start over, if none had ended)"
    done, epochs, phase = backed_up
    where = "" if phase == "scratch" else f" of the {phase.replace('_', '-')} phase"
    if done:
        return f"resume after epoch {done} of {epochs}{where}"
    if phase in ("scratch", "head"):  # a run's first phase
        return "start over (no epoch had ended)"
    return f"resume at the start{where} (none of its epochs had ended)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Train and evaluate image classifiers.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model and save it with its metrics card",
                                usage="%(prog)s --data DATA [OPTION ...]",  # argparse's own fills a screen
                                description="Train a model; writes MODELS/NAME.h5 and MODELS/NAME.json.",
                                epilog="Options left out keep the preset's values, shown in brackets "
                                       "(all of them in trainer/presets.py).")
    train.add_argument("--arch", **choice_of(sorted(DEFAULT_PRESET)),
                       help="architecture (default: the preset's, else scratch)")
    train.add_argument("--preset", **choice_of(sorted(PRESETS)),
                       help="named recipe (default: the architecture's own: " +
                       ", ".join(f"{a} -> {p}" for a, p in DEFAULT_PRESET.items()) + ")")
    train.add_argument("--data", required=True,
                       help="'cifar10' (downloads it) or a folder / .zip of class subfolders")
    train.add_argument("--test-data", help="a separate labelled folder / .zip to score at the end")
    for name, (kind, text) in OVERRIDES.items():
        read = choice_of(kind) if isinstance(kind, tuple) else {"type": kind}
        train.add_argument("--" + name.replace("_", "-"), help=text + _presets_values(name), **read)
    train.add_argument("--name", type=model_name, help="model name (default: DATA_ARCH, e.g. cifar10_scratch)")
    train.add_argument("--out", type=Path, default=Path("models"), help="models folder (default: models)")
    train.add_argument("--run-dir", type=Path, default=Path("runs"),
                       help="where checkpoints for resuming live (default: runs)")
    train.add_argument("--replace", action="store_true",
                       help="replace MODELS/NAME.h5 if it exists (without it, the run is refused)")
    train.set_defaults(command=_train, parser=train)

    evaluate = commands.add_parser("evaluate", help="score a saved model on a labelled folder",
                                   description="Score MODEL.h5 (with its card beside it) on labelled images.")
    evaluate.add_argument("model", type=Path, help="path to a .h5 model with its .json card beside it")
    evaluate.add_argument("--data", required=True, type=Path, help="a folder / .zip of class subfolders")
    evaluate.add_argument("--held-out", action="store_true",
                          help="score only the images the model's run held out of DATA (DATA being its "
                               "training data): the card's evaluation, measured again")
    evaluate.set_defaults(command=_evaluate, parser=evaluate)

    predict = commands.add_parser("predict", help="label images with a saved model",
                                  description="The most likely classes of each image, by MODEL.h5 (with its card "
                                              "beside it), from the same pixels as the web app would give it.")
    predict.add_argument("model", type=Path, help="path to a .h5 model with its .json card beside it")
    predict.add_argument("images", type=Path, nargs="+",
                         help="image files, or folders / .zips of them (every file in them, in name order)")
    predict.add_argument("--top-k", type=_top_k, default=3, help="how many classes to give for each image (default: 3)")
    predict.add_argument("--json", action="store_true",
                         help='a JSON object per line: {"file": ..., "predictions": [{"label": ..., "probability": '
                              '...}, ...]}, or {"file": ..., "error": ...}')
    predict.set_defaults(command=_predict, parser=predict)

    imported = commands.add_parser(
        "import", help="serve a Keras model trained elsewhere, such as a notebook's",
        usage="%(prog)s NOTEBOOK_MODEL --data DATA and/or --classes A,B,... [OPTION ...]",
        description="Make a Keras model trained elsewhere into one the web app serves: the notebook's "
                    "preprocessing goes inside it as layers, its data augmentation is left out, and it gives a "
                    "probability per class; saved as MODELS/NAME.h5 with its card.")
    imported.add_argument("model", type=Path, metavar="NOTEBOOK_MODEL", help="the notebook's .h5 or .keras file")
    imported.add_argument("--data", type=Path,
                          help="labelled pictures, a folder / .zip of class subfolders: they give the classes, "
                               "find the scaling by scoring, and their scores go on the card")
    imported.add_argument("--classes", type=class_names,
                          help="the classes, comma-separated, in the order of the model's outputs (default: DATA's "
                               "class folders in name order, as Keras's image_dataset_from_directory takes them)")
    imported.add_argument("--scaling", **choice_of(SCALINGS),
                          help="what the notebook did to pixels before the model: " +
                               "; ".join(f"{kind}: {what}" for kind, what in SCALINGS.items()) +
                               " (default: found from the model's own arithmetic, or its first layer, or by "
                               "scoring on DATA)")
    imported.add_argument("--mean", type=numbers,
                          help="for a notebook that standardized pixels by their own statistics, (x - mean) / std "
                               "after --scaling (default none): the means, one or one a channel, e.g. 125.3,123.0,113.9")
    imported.add_argument("--std", type=numbers, help="and the standard deviations, as --mean")
    imported.add_argument("--image-size", type=image_size,
                          help="SIDE or HEIGHTxWIDTH, for a model that takes pictures of any size: the size it "
                               "was trained on")
    imported.add_argument("--name", type=model_name, help="model name (default: the file's, without .h5 or .keras)")
    imported.add_argument("--out", type=Path, default=Path("models"), metavar="MODELS",
                          help="models folder (default: models)")
    imported.add_argument("--replace", action="store_true", help="replace MODELS/NAME.h5 if it exists")
    imported.set_defaults(command=_import, parser=imported)
    return parser


def _top_k(text: str) -> int:
    try:
        return whole_number(text, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}") from None


def _train(args) -> int:
    from trainer.card import exists_message
    from trainer.data import data_name, load_dataset, natural_size

    hp = recipe(args)
    # Said before a run folder or lock is made, and before the training data has loaded.
    if args.data != "cifar10":
        _check_data("--data", args.data, "cifar10 or a folder")
    if args.test_data is not None:
        _check_data("--test-data", args.test_data)
    for option, folder in (("--out", args.out), ("--run-dir", args.run_dir)):
        _check_writable(option, folder)  # before training, not after it
    name = args.name or default_name(data_name(args.data), hp["arch"])
    if args.out.resolve().is_relative_to((args.run_dir / name).resolve()):
        raise UsageError(f"--out must not be inside {args.run_dir / name}: that run folder is deleted once the "
                         "model is saved")
    model_path = args.out / f"{name}.h5"
    if model_path.exists() and not (args.run_dir / name).exists() and not args.replace:
        raise UsageError(exists_message(model_path))  # said now, not after the data has loaded; train() checks a resume
    teachers_card = None
    if hp.get("teacher"):
        from trainer.distillation import teacher_card

        teachers_card = teacher_card(hp["teacher"])  # a damaged teacher said now, not after the data has loaded
    if hp["arch"] != "scratch":
        from trainer.models import check_weights

        check_weights(hp["arch"], hp["weights"])

    from trainer.train import run_lock, train

    with run_lock(args.run_dir / name):  # a second run of this name is refused before its data loads
        if hp["image_size"] is None:  # the transfer presets'
            hp["image_size"] = natural_size(args.data, hp["upscale_size"])
        if hp.get("teacher"):
            from trainer.distillation import refuse_other_input

            refuse_other_input(hp["teacher"], teachers_card, hp["image_size"])
        data, test = load_dataset(args.data, hp["image_size"])
        if args.test_data:
            from trainer.data import load_folder

            test = load_folder(Path(args.test_data), hp["image_size"], classes=data.classes)
        train(hp, data, test, args.out, name, args.run_dir / name, replace=args.replace)
    return 0


def _check_data(option: str, path, kinds: str = "a folder") -> None:
    from trainer.data import check_tree

    if not Path(path).exists():
        raise UsageError(f"{option} must be {kinds} or .zip of class subfolders; there is no {path}")
    check_tree(Path(path))  # a file that is no .zip


def _check_writable(option: str, folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} must be a folder that can be written to; {folder} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise UsageError(f"{option} must be a folder that can be written to; {folder}: {error.strerror}") from None


def _evaluate(args) -> int:
    from trainer.data import digest, load_folder, overlap_words, trained_on
    from trainer.metrics import format_report
    from trainer.predict import BadOutput
    from trainer.train import evaluate

    card = _read_card(args.model)
    _check_data("--data", args.data)  # before the model takes seconds to load
    model = _open_model(args.model, card)
    data = load_folder(args.data, tuple(card["input_shape"][:2]), classes=card["classes"])
    title = f"{args.model.stem} on {data.name}"
    if args.held_out:
        data, title = _held_out(data, card, args.model.name), title + ", held out"
    elif (found := trained_on(data, card)) and found[0]:
        shared = overlap_words(*found[:2], len(data.files), f"of {data.name}")
        print(f"warning: {args.model.name} was trained on {shared} ({found[2]}), so this score counts "
              "images it learned from; on the data it was trained on, --held-out scores only those its run held out",
              file=sys.stderr)
    # A card from before samples; or a sample that misses, as another Pillow might decode the images otherwise.
    elif card.get("data_digest") == digest(data.files):
        print(f"warning: {data.name} is the data {args.model.name} was trained on, so this score counts the images "
              "it learned from; --held-out scores only those its run held out", file=sys.stderr)
    elif found is None and "data_digest" not in card:  # an imported model's card, or one from before cards recorded images
        print(f"warning: the card of {args.model.name} does not say which images it was trained on, so nothing "
              f"checks whether {data.name} holds some of them (which would count images it learned from)",
              file=sys.stderr)
    try:
        print(format_report(evaluate(model, data), title))
    except BadOutput as error:
        raise _bad_output(args.model, error) from None
    return 0


def _predict(args) -> int:
    from trainer.data import check_zip
    from trainer.predict import BadOutput, predict

    card = _read_card(args.model)
    for path in args.images:  # before the model takes seconds to load
        if not path.exists():
            raise UsageError(f"There is no image, folder or .zip {path}")
        if path.is_file():  # not a folder named like a zip, nor a pipe
            check_zip(path)
    model = _open_model(args.model, card)
    height, width, _ = card["input_shape"]
    try:
        answered, failed = _print_answers(predict(model, card["classes"], (height, width), args.images, args.top_k),
                                          args.json)
    except BadOutput as error:
        raise _bad_output(args.model, error) from None
    if not answered + failed:
        raise UsageError(f"There are no files in {', '.join(map(str, args.images))}")
    if failed:
        print(f"{failed:,} of {answered + failed:,} files could not be labelled", file=sys.stderr)
    return 1 if failed else 0


def _bad_output(path: Path, error: Exception) -> UsageError:
    """A model whose answers are no probabilities: the web app finds it at load, from a blank
    image; evaluate and predict, only from the images they are given."""
    return UsageError(f"{path.name} gives {error}: retrain or replace it")


def _print_answers(answers, as_json: bool) -> tuple[int, int]:
    """Each answer as it comes, a line each; returns how many images were labelled and how many not."""
    answered = failed = 0
    for answer in answers:
        if as_json:
            found = {"error": answer.error} if answer.error else \
                {"predictions": [{"label": label, "probability": p} for label, p in answer.predictions]}
            _print_answer(_json_line({"file": answer.name, **found}))
        elif answer.error:
            print(f"{one_line(answer.name)}: not labelled: {answer.error}", file=sys.stderr, flush=True)
        else:
            shares = ", ".join(f"{label} {percentage(p)}" for label, p in answer.predictions)
            _print_answer(f"{one_line(answer.name)}: {shares}")
        failed += bool(answer.error)
        answered += not answer.error
    return answered, failed


def _json_line(value: dict) -> str:
    """`value` as JSON, its names escaped ("\\u732b") where the output's encoding cannot write
    them: backslashreplace's "\\U0001f41f" or "\\xe9" would not be JSON."""
    import json

    line = json.dumps(value, ensure_ascii=False)
    try:
        line.encode(sys.stdout.encoding or "utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return line


def _print_answer(line: str) -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:  # a reader that stopped early: main stops quietly
        raise
    except OSError as error:  # a file on a full disk (`> answers.txt`), say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else Python's exit tries it once more
        raise UsageError(f"Cannot write the answers to standard output ({os_reason(error)})") from None


def _import(args) -> int:
    from trainer.card import exists_message
    from trainer.importing import import_model

    source = args.model
    if not source.exists():
        raise UsageError(f"There is no model file {source}")
    if source.is_dir():
        raise UsageError(f"{source} is a folder, as TensorFlow 2's SavedModel is: Keras 3 reads .keras and .h5 files; "
                         "save the model in the notebook with model.save(\"name.keras\")")
    if source.suffix.lower() not in (".h5", ".hdf5", ".keras"):
        raise UsageError(f"NOTEBOOK_MODEL must be a Keras model file, .keras or .h5; {source} is not one")
    if args.data is None and args.classes is None:
        raise UsageError("Pass --data, labelled pictures that give the classes, or --classes")
    if (args.mean is None) != (args.std is None):
        raise UsageError("Pass --mean and --std together: the notebook's (x - mean) / std")
    if args.std is not None and min(args.std) <= 0:
        raise UsageError(f"--std must be above 0, not {min(args.std):g}")
    if args.data is not None:
        _check_data("--data", args.data)
    _check_writable("--out", args.out)
    try:
        name = args.name or model_name(source.stem)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"{source.stem!r} cannot name a model: pass --name, which {error}") from None
    model_path = args.out / f"{name}.h5"
    if model_path.resolve() == source.resolve():
        raise UsageError(f"{source} is the file the import would save: pass --name to save it beside it")
    if model_path.exists() and not args.replace:
        raise UsageError(exists_message(model_path, "put the imported model"))
    standardized = None if args.mean is None else (args.mean, args.std)
    import_model(source, model_path, args.data, args.classes, args.scaling, args.image_size, standardized)
    return 0


def _read_card(path: Path) -> dict:
    """The card beside the model file `path`, checked, before the model takes seconds to load."""
    from trainer.card import load_card
    from trainer.model_file import is_dangling_link

    if path.is_dir():
        raise UsageError(f"MODEL must be a .h5 model file; {path} is a folder")
    if is_dangling_link(path):
        raise UsageError(f"{path} is a link to {os.readlink(path)}, which is not there")
    if not path.exists():
        # A model named as the web app names it (`cifar10_scratch`), for its file in the default --out.
        guess = next((file for file in (path.with_name(f"{path.name}.h5"), Path("models") / f"{path.name}.h5")
                      if path.name and file.is_file()), None)
        raise UsageError(f"MODEL must be a .h5 model file; there is no {path}"
                         + (f" (did you mean {guess}?)" if guess else ""))
    if path.suffix != ".h5":
        if path.suffix.lower() == ".h5":  # Keras reads no other spelling
            raise UsageError(f"Keras reads .h5 files only by that name: rename {path.name} to {path.stem}.h5")
        raise UsageError(f"{path.name} is not a .h5 model file: pass the model, with its .json card beside it")
    card_path = path.with_suffix(".json")
    if not card_path.exists():
        raise UsageError(f"{path.name} has no metrics card beside it ({card_path.name}), which gives the "
                         "model's classes and image size")
    try:
        return load_card(card_path)
    except ValueError as error:
        raise UsageError(f"Cannot use {path.name}: its {error}") from None


def _open_model(path: Path, card: dict):
    """The Keras model in `path`, checked against its card."""
    import keras

    from trainer import model_file
    from trainer.card import mismatch
    from trainer.formatting import reason

    # Read through in a child process first, as some damaged files crash HDF5 itself.
    problem = model_file.problem(path, card)
    if problem:
        raise UsageError(problem)
    if note := model_file.card_of_another_file(path, card):
        print(f"warning: {note}", file=sys.stderr)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # an HDF5 file that is not a Keras model fails in many ways
        why = model_file.keras_refusal(error) or (f"{reason(error)}; copy it again if it was cut short or damaged, "
                                                   "or train it again")
        raise UsageError(f"Cannot use {path}: {why}") from None
    problem = mismatch(model, card)
    if problem:
        raise UsageError(f"{path.name} does not match its card: {problem}")
    return model


def _held_out(data, card: dict, file_name: str):
    """The images of `data` that the model's run held out, found by the split the card records."""
    from trainer.data import digest, stratified_split

    settings = card.get("hyperparameters")
    fraction, seed = (settings.get("validation_fraction"), settings.get("seed")) if isinstance(settings, dict) else (None, None)
    if not (isinstance(fraction, float) and 0 < fraction < 1 and isinstance(seed, int) and seed >= 0):
        raise UsageError(f"The card of {file_name} does not say how its run split its data "
                         "(hyperparameters validation_fraction and seed)")
    if "data_digest" not in card:  # cards of runs before digests were kept
        print(f"warning: the card of {file_name} has no data_digest, so nothing checks that {data.name} holds "
              "the very images it was trained on", file=sys.stderr)
    elif card["data_digest"] != digest(data.files):
        raise UsageError(f"{data.name} is not the data {file_name} was trained on: its images differ from those the "
                         "card's data_digest records, so the held-out ones cannot be found in it")
    held_out = data.subset(stratified_split(data.labels, fraction, seed, data.classes)[1])
    found = digest(held_out.files)
    if card.get("held_out_digest", found) != found:
        raise UsageError(f"This trainer splits {data.name} unlike the one that trained {file_name}: the images it "
                         "holds out differ from those the card's held_out_digest records")
    return held_out


def default_name(data: str, arch: str) -> str:
    """DATA_ARCH, the data's name cut short where it would pass MAX_NAME_BYTES (a folder's name
    may take 255 bytes, a CJK one 85 characters)."""
    slug = "".join(c if c.isalnum() else "_" for c in data.lower())
    room = MAX_NAME_BYTES - len(arch) - 1
    return f"{slug.encode()[:room].decode(errors='ignore').strip('_') or 'data'}_{arch}"


def _ignore_late_interrupts(code: int) -> None:
    """The command is done, and Python and TensorFlow take up to a second more to shut down.
    A Ctrl-C then would print a traceback from an exit handler, or end a finished command
    with an interrupted one's status: it is ignored. SIGTERM ends the process at once, with
    the command's own status."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # unlike a handler of ours, kept to the last C++ destructor
    signal.signal(signal.SIGTERM, lambda *_: os._exit(code))


if __name__ == "__main__":
    status = main()
    _ignore_late_interrupts(status)
    sys.exit(status)
