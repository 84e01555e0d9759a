# The stockflow processor image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
COPY processors ./processors
# the versions the suite ran against (constraints.txt, made by scripts/lock)
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system stockflow
USER stockflow
EXPOSE 9108
ENTRYPOINT ["stockflow"]
CMD ["process"]
