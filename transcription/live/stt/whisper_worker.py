"""The Whisper decoder process of the offline engine (``python -m`` this module).

One process holds one faster-whisper (CTranslate2) model and decodes whole utterances,
one request at a time, for every stream of the process that started it
(:mod:`transcription.live.stt.whisper_pool`). It never touches the network: the model is loaded
from a directory that must hold ``model.bin``, ``config.json`` and ``tokenizer.json``
(faster-whisper would otherwise fetch what is missing from a model hub), and
``HF_HUB_OFFLINE`` is set by the pool.

The protocol, on plain pipes (Celery's prefork workers are daemonic processes, which
``multiprocessing`` refuses to give children):

* argv[1] is a JSON object: ``model_dir``, ``compute_type``, ``cpu_threads``;
* the first stdout line is ``{"ready": true, "multilingual": bool, "load_seconds": s}``,
  or the process exits non-zero with the reason on stderr;
* each request is a JSON header line on stdin (``id``, ``bytes``, ``language``,
  ``languages``, ``min_window``, ``words``) followed by ``bytes`` bytes of PCM16LE 16 kHz
  mono; each answer is one JSON line on stdout with the same ``id`` (see
  :func:`_Decoder.transcribe`);
* end of stdin means exit.

**The window.** Whisper's encoder was trained on 30 s windows, and faster-whisper always
pads to one, so decoding a 2 s utterance costs as much as 30 s of audio (~0.7 CPU-s of the
~0.85 s per call is the encoder, for ``tiny.en``). CTranslate2's encoder accepts a shorter
input, and its cost falls faster than linearly with it (10 s: ~0.09 CPU-s). Measured on
the project's recordings, a window of at least 10 s and at least the utterance plus 3 s
gives the same words as the full window, while windows of 5 s and less make the decoder
loop ("Yes, yes, yes, ..."); so the window is ``max(min_window, utterance + 3 s)``, and a
result that still looks degenerate (it ran into its token cap, compresses like a loop,
or has a very low log-probability) is decoded again with the full 30 s window, which is
stock Whisper. ``min_window=30`` turns the shortcut off.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
FULL_WINDOW = 30.0
WINDOW_MARGIN = 3.0
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
# The hallucination guard (Whisper's own thresholds): a decode that compresses better than
# this is a loop; below this mean log-probability it is a guess; "no speech" above this
# probability together with a guess is silence, not words.
COMPRESSION_RATIO_LIMIT = 2.4
LOG_PROB_LIMIT = -1.0
NO_SPEECH_LIMIT = 0.6
# Whisper's classic "you" on near-silence comes with a no-speech probability near 1 and a
# log-probability above the limit; the VAD already said "speech", so only a sure "no".
SURE_NO_SPEECH = 0.9
# A looping decoder writes the same phrase again and again ("Yes. Yes. Yes.", or a whole
# clause twice); people do say "no, no, no", so this only earns a second decode with the full
# window: a short phrase three times in a row, or one of LONG_PHRASE words twice.
REPEAT_LIMIT = 3
LONG_PHRASE = 4
# A token cap scaled to the audio: fast speech is ~4 words (~6 tokens) a second.
TOKENS_BASE = 12
TOKENS_PER_SECOND = 10
MAX_TOKENS = 220
# faster-whisper's defaults, attaching punctuation to the word before or after it.
PREPEND_PUNCTUATION = "\"'\u201c\u00bf([{-"
APPEND_PUNCTUATION = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001"


def missing_model_files(model_dir: str | Path) -> list[str]:
    """The files a model directory lacks (an empty list when it is usable offline)."""
    path = Path(model_dir)
    return [name for name in REQUIRED_FILES if not (path / name).is_file()]


class _Decoder:
    """A loaded model and the decode of one utterance."""

    def __init__(self, *, model_dir: str, compute_type: str, cpu_threads: int) -> None:
        missing = missing_model_files(model_dir)
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)}")
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = WhisperModel(
            model_dir,
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=1,
            local_files_only=True,
        )
        self.multilingual: bool = self.model.model.is_multilingual
        self._tokenizer_class = Tokenizer
        self._tokenizers: dict[str | None, Any] = {}
        english = self.tokenizer("en")
        self.suppress_tokens = list(get_suppressed_tokens(english, [-1]) or [])

    def tokenizer(self, language: str | None) -> Any:
        if not self.multilingual:
            language = "en"
        if language not in self._tokenizers:
            self._tokenizers[language] = self._tokenizer_class(
                self.model.hf_tokenizer,
                self.multilingual,
                task="transcribe",
                language=language,
            )
        return self._tokenizers[language]

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        languages: list[str],
        min_window: float,
        words: bool,
    ) -> dict[str, Any]:
        """Decode one utterance (float32 samples, at most 30 s).

        Returns ``text`` ("" when nothing was said, or the guard dropped a hallucination),
        ``language``, ``words`` (``[text, start, end, probability]`` in seconds from the
        start of ``audio``, when ``words`` is asked), ``confidence`` (the mean of the word
        probabilities, or None without words), ``window`` (seconds encoded), ``fallback``
        (decoded again with the full window) and ``dropped`` (why the text was dropped).
        """
        audio = audio[: int(FULL_WINDOW * SAMPLE_RATE)]
        seconds = len(audio) / SAMPLE_RATE
        window = min(FULL_WINDOW, max(min_window, math.ceil(seconds + WINDOW_MARGIN)))
        result = self._decode(audio, window, language=language, languages=languages)
        fallback = False
        if result["suspicious"] and window < FULL_WINDOW:
            result = self._decode(audio, FULL_WINDOW, language=language, languages=languages)
            fallback = True
        dropped = ""
        if result["silence"]:
            dropped = "no speech"
        elif result["degenerate"]:
            dropped = "degenerate"
        elif not result["text"]:
            dropped = "empty"
        answer: dict[str, Any] = {
            "text": "" if dropped else result["text"],
            "language": result["language"],
            "words": [],
            "confidence": None,
            "window": result["window"],
            "fallback": fallback,
            "dropped": dropped,
            "avg_logprob": round(result["avg_logprob"], 4),
            "no_speech_prob": round(result["no_speech_prob"], 4),
        }
        if words and not dropped:
            timed = self._words(audio, result)
            answer["words"] = timed
            if timed:
                answer["confidence"] = round(sum(w[3] for w in timed) / len(timed), 4)
        return answer

    def _decode(
        self, audio: np.ndarray, window: float, *, language: str | None, languages: list[str]
    ) -> dict[str, Any]:
        import ctranslate2

        window_samples = int(window * SAMPLE_RATE)
        padded = np.zeros(window_samples, dtype=np.float32)
        padded[: len(audio)] = audio
        frames = int(window * 100)
        features = self.model.feature_extractor(padded)[:, :frames]
        encoder_output = self.model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[np.newaxis])),
            to_cpu=False,
        )
        if self.multilingual and language is None:
            language = self._detect_language(encoder_output, languages)
        tokenizer = self.tokenizer(language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        cap = min(MAX_TOKENS, TOKENS_BASE + math.ceil(TOKENS_PER_SECOND * len(audio) / SAMPLE_RATE))
        generated = self.model.model.generate(
            encoder_output,
            [prompt],
            beam_size=1,
            # CTranslate2's Whisper generates at most max_length // 2 tokens (measured).
            max_length=2 * cap,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self.suppress_tokens,
        )[0]
        tokens = [t for t in generated.sequences_ids[0] if t < tokenizer.eot]
        # CTranslate2 returns the cumulated log-probability divided by the length.
        avg_logprob = generated.scores[0] * len(tokens) / (len(tokens) + 1)
        text = tokenizer.decode(tokens).strip()
        encoded = text.encode()
        compression = len(encoded) / len(zlib.compress(encoded)) if encoded else 0.0
        no_speech = generated.no_speech_prob
        silence = no_speech > SURE_NO_SPEECH or (
            no_speech > NO_SPEECH_LIMIT and avg_logprob < LOG_PROB_LIMIT
        )
        degenerate = not silence and (
            len(generated.sequences_ids[0]) >= cap or compression > COMPRESSION_RATIO_LIMIT
        )
        suspicious = degenerate or (not silence and (avg_logprob < LOG_PROB_LIMIT or _loops(text)))
        return {
            "text": text,
            "tokens": tokens,
            "tokenizer": tokenizer,
            "language": tokenizer.language_code if self.multilingual else "en",
            "encoder_output": encoder_output,
            "window": window,
            "avg_logprob": avg_logprob,
            "no_speech_prob": generated.no_speech_prob,
            "silence": silence,
            "degenerate": degenerate,
            "suspicious": suspicious,
        }

    def _detect_language(self, encoder_output: Any, languages: list[str]) -> str:
        ranked = self.model.model.detect_language(encoder_output)[0]
        codes = [(token[2:-2], probability) for token, probability in ranked]
        allowed = [(code, p) for code, p in codes if not languages or code in languages]
        return (allowed or codes)[0][0]

    def _words(self, audio: np.ndarray, result: dict[str, Any]) -> list[list[Any]]:
        from faster_whisper.transcribe import merge_punctuations

        if not result["tokens"]:
            return []
        content_frames = max(1, len(audio) // self.model.feature_extractor.hop_length)
        alignment = self.model.find_alignment(
            result["tokenizer"], [result["tokens"]], result["encoder_output"], content_frames
        )[0]
        merge_punctuations(alignment, PREPEND_PUNCTUATION, APPEND_PUNCTUATION)
        seconds = len(audio) / SAMPLE_RATE
        timed = []
        for item in alignment:
            word = item["word"].strip()
            if not word:
                continue
            start = min(float(item["start"]), seconds)
            end = min(max(float(item["end"]), start), seconds)
            probability = round(float(item["probability"]), 4)
            timed.append([word, round(start, 3), round(end, 3), probability])
        return timed


def _loops(text: str) -> bool:
    """Whether ``text`` repeats itself the way a looping decoder does (see REPEAT_LIMIT)."""
    words = [w.strip(".,!?;:\"'").lower() for w in text.split()]
    for size in range(1, len(words) // 2 + 1):
        for start in range(len(words) - 2 * size + 1):
            phrase = words[start : start + size]
            count = 1
            while words[start + count * size : start + (count + 1) * size] == phrase:
                count += 1
            if count >= REPEAT_LIMIT or (count >= 2 and size >= LONG_PHRASE):
                return True
    return False


def _read_exactly(stream: Any, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def main(argv: list[str]) -> int:
    # Ctrl-C in a terminal reaches the whole process group; the pool decides when this
    # process ends (by closing its stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = json.loads(argv[0])
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer

    def reply(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    started = time.perf_counter()
    try:
        decoder = _Decoder(
            model_dir=config["model_dir"],
            compute_type=config.get("compute_type", "int8"),
            cpu_threads=int(config.get("cpu_threads", 1)),
        )
    except Exception as exc:
        print(f"the Whisper model could not be loaded: {exc}", file=sys.stderr)
        return 2
    reply(
        {
            "ready": True,
            "multilingual": decoder.multilingual,
            "load_seconds": round(time.perf_counter() - started, 3),
        }
    )
    while header_line := stdin.readline():
        request = json.loads(header_line)
        pcm = _read_exactly(stdin, int(request["bytes"]))
        if pcm is None:
            return 0
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        try:
            audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
            answer = decoder.transcribe(
                audio,
                language=request.get("language"),
                languages=list(request.get("languages") or []),
                min_window=float(request.get("min_window", 10.0)),
                words=bool(request.get("words", True)),
            )
        except Exception as exc:  # a bad request must not take the other streams down
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answer["id"] = request["id"]
        answer["cpu"] = round(time.process_time() - cpu_before, 4)
        answer["wall"] = round(time.perf_counter() - wall_before, 4)
        reply(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
