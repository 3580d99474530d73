"""seq2seq: recurrent encoder-decoders with attention, trained and searched fast and safely."""

from seq2seq.config import Recipe, load_recipe
from seq2seq.errors import UserError
from seq2seq.tasks.tagging import Tagger
from seq2seq.tasks.classification import Classifier
from seq2seq.tasks.language_model import LanguageModel
from seq2seq.tasks.summarization import Summarizer
from seq2seq.tasks.translation import Translator
from seq2seq.tasks.translation.model import Seq2Seq, build_model

__all__ = ["Recipe", "load_recipe", "UserError", "Seq2Seq", "build_model", "Translator", "Summarizer",
           "Classifier", "Tagger", "LanguageModel"]
__version__ = "0.1.0"
