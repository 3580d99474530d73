"""seq2seq-serve: an HTTP JSON API and a page showing attention, over Starlette and uvicorn (the
optional `serve` extra). app.py: routes and errors; batching.py: requests that arrive together
share one search; engine.py: a Translator's results as JSON; requests.py: checking a request;
settings.py: limits and batching defaults; static/: the page."""
