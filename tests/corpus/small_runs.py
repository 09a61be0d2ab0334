"""`obert preprocess` in process on small hand-built inputs: no knowledge base, a 200-token vocabulary, no bars."""

from obert_lib import cli

SMALL_RUN = ["--set", "knowledge_base=null", "--set", "tokenizer.vocab_size=200", "--runtime", "progress=false"]


def preprocess_cli(inputs, output, *args) -> int:
    """The exit status of `obert preprocess --input INPUTS --output OUTPUT` with SMALL_RUN and `args`."""
    return cli.main(["preprocess", "--input", *map(str, inputs), "--output", str(output), *SMALL_RUN, *args])
