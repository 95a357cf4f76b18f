"""The graded questions of each exercise notebook, keyed by the notebook's file name."""
from . import q00_intro

REGISTRY = {
    "00_intro": q00_intro.questions,
}
