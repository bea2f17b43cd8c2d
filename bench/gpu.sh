#!/usr/bin/env bash
# The step-time bench on a machine with a real NVIDIA GPU (at most 8 minutes): Node webgpu through NVIDIA's
# Vulkan driver where present, and tfjs-node-gpu if it is installed; writes the "GPU" section of
# docs/benchmarks.md with the device named. Run from the repository root after `npm install`:
#   bash bench/gpu.sh
# Chromium with its GPU enabled (webgl/webgpu pages) is not measured yet: see docs/benchmarks.md.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
backends=cpu
icd=""
for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
  [ -f "$f" ] && icd="$f" && break
done
if [ -n "$icd" ]; then
  export VK_ICD_FILENAMES="$icd"
  backends="$backends,webgpu"
else
  echo "bench/gpu.sh: no NVIDIA Vulkan driver (nvidia_icd.json) found: webgpu on the GPU skipped" >&2
fi
if node -e "import('@tensorflow/tfjs-node-gpu').then(() => process.exit(0), () => process.exit(1))" 2>/dev/null; then
  backends="$backends,tensorflow"
else
  echo "bench/gpu.sh: @tensorflow/tfjs-node-gpu is not installed (npm install @tensorflow/tfjs-node-gpu where it can): skipped" >&2
fi
echo "bench/gpu.sh: backends $backends"
timeout 470 npx tsx bench/backends.ts --backends "$backends" --models tabular,cnn,text --section gpu --rounds 3 --timeout 140
