# The stockflow processor image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY processors ./processors
RUN pip install --no-cache-dir . && useradd --system stockflow
USER stockflow
EXPOSE 9108
ENTRYPOINT ["stockflow"]
CMD ["process"]
