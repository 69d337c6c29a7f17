# syntax=docker/dockerfile:1
# The code location's image: CUDA runtime, Python 3.11, the project installed with the pins it is
# tested with (the Makefile's torch pin, deploy/constraints.txt for everything else), and Dagster's
# code server as the entry point. The same image runs the webserver, the daemon and every run
# (Kubernetes: deploy/k8s/values.yaml; one Docker host: deploy/docker/compose.yaml).
#
#   docker build -t registry.example.com/diffusion-assets:0.1.0 .
#
# Weights: by default runs read a shared Hugging Face cache (HF_HOME) or offline mirror
# (DIFFUSION_ASSETS_MODELS) from a volume; step 4 bakes them in instead (deploy/README.md).
ARG CUDA_IMAGE=nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04
FROM ghcr.io/astral-sh/uv:0.9 AS uv
FROM ${CUDA_IMAGE}

# 1. Python 3.11 (the version CI tests) in a virtual environment, through uv
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN uv venv --python 3.11 /opt/venv

# 2. torch first, pinned as the Makefile pins it (here the CUDA build from PyPI), then the
#    dependencies at the tested versions; this layer survives code edits
ARG TORCH_VERSION=2.13.0
COPY deploy/constraints.txt /tmp/constraints.txt
RUN uv pip install "torch==${TORCH_VERSION}" \
    && grep -v '^torch==' /tmp/constraints.txt > /tmp/deps.txt \
    && uv pip install -r /tmp/deps.txt

# 3. the project itself, editable as `make install` does, so that deploy/, models/, prompts/
#    and lora_datasets/ stay beside the package (paths.project_root)
WORKDIR /opt/diffusion_assets
COPY . .
RUN uv pip install --no-deps -e '.[deploy]' \
    && mkdir -p /opt/dagster/dagster_home
ENV DAGSTER_HOME=/opt/dagster/dagster_home \
    DIFFUSION_ASSETS_ROOT=/opt/diffusion_assets \
    HF_HOME=/opt/huggingface \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1

# 4. optional: weights baked in as a Hugging Face cache, whose blobs are named by their sha256, so
#    no run downloads or hashes them (a gated model needs a token: --secret id=hf_token,env=HF_TOKEN)
#      docker build --build-arg BAKE_MODELS="stabilityai/stable-diffusion-xl-base-1.0" .
#    A volume mounted at HF_HOME (deploy/k8s/values.yaml, deploy/docker/dagster.yaml) replaces it.
ARG BAKE_MODELS=""
RUN --mount=type=secret,id=hf_token,required=false \
    for model in $BAKE_MODELS; do \
        HF_HUB_OFFLINE=0 HF_TOKEN="$(cat /run/secrets/hf_token 2>/dev/null)" hf download "$model" >/dev/null \
        || exit 1; \
    done

# 5. the code location's gRPC server, named as in workspace.yaml; Helm and compose pass the same
EXPOSE 4000
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", \
     "--module-name", "diffusion_assets.definitions", "--location-name", "diffusion_assets"]
