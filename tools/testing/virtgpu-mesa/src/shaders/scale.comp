// SPDX-License-Identifier: GPL-2.0
// out[i] = in[i] * 3 + 7 + i: the GPU reads what the CPU wrote (the first
// half of the buffer) and writes what the CPU then reads (the second half).
#version 450

layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer Data {
	uint words[];
} data;

layout(push_constant) uniform Params {
	uint n;
} params;

void main()
{
	uint i = gl_GlobalInvocationID.x;

	if (i < params.n)
		data.words[params.n + i] = data.words[i] * 3u + 7u + i;
}
