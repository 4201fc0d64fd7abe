FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY cli ./cli
RUN pip install --no-cache-dir .
ENV TICKETING_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
CMD ["ticketing", "serve", "--host", "0.0.0.0", "--port", "8000"]
