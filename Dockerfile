# One image for every Inferloop service; the command picks the role
# (`inferloop up`, `inferloop collector`, `inferloop analyzer`).
FROM python:3.11-slim
# No C compiler in the slim image: the optional C modules (setup.py) are skipped, and the
# Python code they stand in for runs (the collector writes COPY rows through psycopg).

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY core core
COPY app app
COPY deploy deploy
COPY sdk sdk
COPY store store
COPY collector collector
COPY analyzer analyzer
COPY alerts alerts
COPY feedback feedback
COPY server server
COPY migrations migrations
RUN pip install --no-cache-dir '.[platform]'

ENV INFERLOOP_HOST=0.0.0.0 \
    INFERLOOP_DATA_DIR=/data
VOLUME /data
EXPOSE 8765
CMD ["inferloop", "up"]
