"""Language-model judges: a model reads a sample as a person would and marks where it falls.

``lmread judge`` (:mod:`lmread.cli.judge`) runs them.  The pieces:

* :mod:`lmread.judge.templates`: the shipped prompt templates, user templates, placeholders;
* :mod:`lmread.judge.localize`: numbered sentences, quote matching, the exact fall token;
* :mod:`lmread.judge.answer`: the JSON schema of an answer and how raw text becomes a verdict;
* :mod:`lmread.judge.http` and :mod:`lmread.judge.engines`: in-process llama.cpp and
  OpenAI-compatible chat servers;
* :mod:`lmread.judge.runner`: choosing samples, resuming, writing ordinary marks under
  ``auto-judge-<model>-<template>``.
"""
