"""The walk-through of CS231n's lecture on CNN architectures, in the lecture's order.

Each section takes the lecture's worked questions and claims, asks them in our words, answers them
with a cnnzoo command or a few lines of Python, and, where the lecture gives a number, checks it:
the verdict lines are computed by the cells, not written here.
"""

from __future__ import annotations

from cnnzoo.lecture.page import Python, Section, Shell, Text

TITLE = "Walk through the lecture: CNN architectures, runnable"

INTRO = """
CS231n's lecture on CNN architectures goes from LeNet-5 to SqueezeNet, with worked questions
along the way: how big is AlexNet's first output, how many parameters does it hold, what does a
stack of 3x3 convolutions see, how much memory does VGG-16 take per image, why does GoogLeNet
need 1x1 convolutions. This page asks each of those questions of cnnzoo and shows the command
and its real output. Where the lecture states a number, a line says whether it holds and, when it
does not, why.

Everything below was produced by `python -m cnnzoo.lecture --out docs`, which runs every cell;
the same cells make the notebook [lecture.ipynb](lecture.ipynb), which the test suite executes
end to end and compares with this page. Shapes are written C x H x W, MACs are
multiply-accumulates (the lecture's "operations"; FLOPs = 2 x MACs), and no model here holds
trained weights unless a section says so: parameter counts, shapes and costs do not depend on
them.
"""

CHECK = '''
def check(claim, ours, holds, why=""):
    """Print the lecture's number beside ours and whether it holds."""
    verdict = "holds" if holds else "does not hold"
    print(f"lecture: {claim}\\ncnnzoo:  {ours}\\n-> {verdict}" + (f": {why}" if why else ""))
'''

LENET = Section(
    "LeNet-5",
    (
        Text(
            "The first convolutional network put to work (reading digits on cheques): 5x5 "
            "convolutions at stride 1, subsampling, then fully connected layers. cnnzoo's "
            "`lenet5` is the 1998 paper's network, with its partial C3 connection table."
        ),
        Shell("cnnzoo summary lenet5"),
    ),
)

ALEXNET = Section(
    "AlexNet",
    (
        Text(
            "**What is the output of the first layer?** CONV1 has 96 filters of 11x11 at "
            "stride 4 on a 227x227x3 image. `--explain` writes out the arithmetic for each layer:"
        ),
        Shell("cnnzoo summary alexnet --explain | head -12"),
        Text(
            "**How many parameters does CONV1 hold?** The lecture counts the weights only and "
            "rounds: (11 x 11 x 3) x 96 = 35K."
        ),
        Python(
            "import cnnzoo\n\n"
            + CHECK
            + '''
report = cnnzoo.summary("alexnet")
conv1 = next(r for r in report.all_layers if r.name == "features.conv1")
weights = 11 * 11 * 3 * 96
check("(11*11*3)*96 = 35K parameters",
      f"{conv1.params:,} = {weights:,} weights + {conv1.params - weights} biases",
      round(weights, -3) == 35_000 and conv1.params - weights == 96,
      "35K is the weights rounded; the 96 biases add 0.3%")
'''
        ),
        Text(
            "**And the pooling layer after it?** (55 - 3) / 2 + 1 = 27, so 27x27x96: pooling keeps "
            "the depth, and it has nothing to learn, so no parameters (the lines for pool1 "
            "above: `params: 0`)."
        ),
        Text(
            "**Why 227 and not 224?** The paper says 224x224, but with an 11x11 kernel at "
            "stride 4 and no padding, 224 does not divide: (224 - 11) / 4 + 1 = 54.25. Floored "
            "layer after layer, the maps end at 5x5 instead of 6x6, and fc6, which expects "
            "6 x 6 x 256 = 9216 inputs, rejects them. cnnzoo says where, and which input passes:"
        ),
        Shell("cnnzoo summary alexnet --input 3x224x224 | tail -3"),
        Text(
            "**The two towers.** AlexNet was split across two 3 GB GPUs: CONV2, CONV4 and CONV5 "
            "see only the half of the previous layer's maps that lives on their GPU. cnnzoo "
            "builds this as grouped convolutions (groups=2), which halves their weights; "
            "CONV3 and the fully connected layers cross between the GPUs."
        ),
        Shell("cnnzoo summary alexnet --explain | grep -A2 -E '^features.conv(2|3) '"),
        Text(
            "**Where are the parameters?** The three fully connected layers hold almost all of "
            "them; fc6 alone, 9216 x 4096 weights, holds more than all the convolutions together."
        ),
        Shell("cnnzoo summary alexnet | grep -A1 -E '^(Parameters|Most parameters)'"),
    ),
)

ZFNET = Section(
    "ZFNet",
    (
        Text(
            "ZFNet is AlexNet with CONV1 changed from 11x11 stride 4 to 7x7 stride 2, and wider "
            "CONV3-5. The lecture's table leaves a question mark at CONV1: (227 - 7) / 2 + 1 "
            "is 111, yet the table says 110, and the next rows (28, then a blank) do not "
            "follow from the table's own shapes either."
        ),
        Shell("cnnzoo summary zfnet --explain | grep -A1 -E '^features.(conv|pool)(1|2) '"),
        Python(
            '''
check("CONV1: 110x110x96 in the table, but (227 - 7)/2 + 1 = 111 ???",
      "110 = (224 + 2*1 - 7)/2 + 1 = 110.5, floored: the paper's 224 input with padding 1",
      (224 + 2 - 7) // 2 + 1 == 110 and (227 - 7) // 2 + 1 == 111,
      "the table's 110 is right for the paper's input; 111 is what 227 without padding gives")
'''
        ),
        Text(
            "So the question marks resolve: the paper's input is 224x224 with CONV1 padded by 1, "
            "which gives 110 (floored); POOL1 gives 55, CONV2 (stride 2, no padding) 26, POOL2 "
            "13, and from there on the network matches the table. The divisions that are not "
            "exact are flagged above, each with the input that would make it exact."
        ),
    ),
)

VGG = Section(
    "VGG",
    (
        Text(
            "**What does a stack of three 3x3 convolutions (stride 1) see?** Each layer widens "
            "the receptive field by 2 pixels: 3, 5, 7. So three stacked 3x3 layers see a 7x7 "
            "window, as one 7x7 layer does, with three non-linearities instead of one and "
            "fewer parameters."
        ),
        Python(
            '''
from torch import nn

from cnnzoo.analysis import summary

C = 256
stack = summary(nn.Sequential(*(nn.Conv2d(C, C, 3, padding=1) for _ in range(3))), (C, 56, 56))
single = summary(nn.Conv2d(C, C, 7, padding=3), (C, 56, 56))
print("receptive field after each 3x3 layer:", [r.rf_size[0] for r in stack.layers])
print(f"three 3x3 layers: {stack.totals.params:,} params = 3 x (3*3*{C}*{C} + {C})")
print(f"one 7x7 layer:    {single.totals.params:,} params = 7*7*{C}*{C} + {C}")
print(f"ratio: {stack.totals.params / single.totals.params:.2f} (27/49 without biases)")
'''
        ),
        Text(
            "**Why do the channels double each time the resolution halves?** To keep the cost "
            "of each stage about the same: halving height and width divides the positions by 4, "
            "doubling the input and output channels multiplies the work per position by 4. "
            "The MACs of VGG-16's five stages:"
        ),
        Python(
            '''
import cnnzoo
from cnnzoo.formatting import format_count

vgg = cnnzoo.summary("vgg16")
stages = {}
for row in vgg.all_layers:
    if row.type == "Conv2d":
        stages.setdefault(row.output_shape[-1], []).append(row)
for size, rows in stages.items():
    channels = rows[0].output_shape[1]
    macs = sum(r.macs for r in rows)
    print(f"{size:>3}x{size:<3} {channels:>3} channels, {len(rows)} convs: "
          f"{format_count(macs)} MACs")
'''
        ),
        Text(
            "The first stage is cheaper (its first conv reads only 3 channels) and the last has "
            "one 14x14 stage at 512 channels instead of doubling again, but stages 2-4 cost the "
            "same to three figures."
        ),
        Text(
            "**How much memory does one image take?** The lecture adds up the values each layer "
            "outputs in the forward pass (input, every conv, pool and fully connected layer; "
            "the in-place ReLUs reuse their input's memory) and gives a total of 24M values, "
            "about 96 MB at 4 bytes each, and \"about twice that for the backward pass\"."
        ),
        Python(
            '''
import math

from cnnzoo.formatting import format_bytes

kept = [r for r in vgg.all_layers if r.type in ("Conv2d", "MaxPool2d", "Linear")]
values = 3 * 224 * 224 + sum(math.prod(r.output_shape[1:]) for r in kept)
check("24M values per image (about 96 MB), forward only",
      f"{values / 1e6:.1f}M values = {format_bytes(4 * values)} in float32 "
      f"(input + {len(kept)} conv/pool/fc outputs)",
      abs(values - 24e6) < 1e6,
      "the slide's own rows (150K + 3.2M + 3.2M + 800K + ...) add up to 15.2M, not 24M")
'''
        ),
        Text(
            "**Can any of it be thrown away?** For inference, yes: a layer's output can be freed "
            "once the next layer has read it. For training, no: backward needs each layer's "
            "input to compute its weight gradient, so the forward activations are kept, and "
            "backward adds gradients of the same size. cnnzoo's training estimate counts "
            "these, plus the weights, their gradients and the optimizer's state:"
        ),
        Shell("cnnzoo summary vgg16 | grep -A1 -E '^(Activations per image|Training estimate)'"),
        Text(
            "**Where are the parameters, and where is the memory?** The parameters sit in the "
            "fully connected layers (fc6 alone: 7 x 7 x 512 x 4096 weights); the activation "
            "memory sits in the first layers, where the maps are 224x224."
        ),
        Shell("cnnzoo summary vgg16 | grep -A1 -E '^Most'"),
    ),
)

GOOGLENET = Section(
    "GoogLeNet",
    (
        Text(
            "**The naive inception module.** On a 28x28x256 input, run a 1x1 (128 filters), a 3x3 "
            "(192) and a 5x5 (96) convolution and a 3x3 max pool side by side, and concatenate. "
            "The lecture's notes call the 5x5 branch \"128 filters\" but draw it with 96 outputs, "
            "and add 128 for the pool branch where the pool passes all 256 input channels; the "
            "concatenation is 128 + 192 + 96 + 256 = 672 deep."
        ),
        Python(
            '''
from cnnzoo.layers import Inception, InceptionChannels, NaiveInception

naive = summary(NaiveInception(256, conv1x1=128, conv3x3=192, conv5x5=96), (256, 28, 28))
for row in naive.layers:
    if row.type in ("Conv2d", "MaxPool2d", "Concat"):
        print(f"{row.name:<14} {'x'.join(map(str, row.output_shape[1:])):>10}  "
              f"{format_count(row.macs):>6} MACs")
check("854M operations", f"{naive.totals.macs:,} MACs", round(naive.totals.macs, -6) == 854e6)
'''
        ),
        Text(
            "**With 1x1 bottlenecks.** GoogLeNet puts a 1x1 convolution before the 3x3 and the 5x5 "
            "(64 filters each) and after the pool (64): a 1x1 convolution is a per-pixel linear "
            "map across channels, a projection to fewer channels. The lecture's slide lists "
            "this module's layers and totals them as 358M operations."
        ),
        Python(
            '''
slide = InceptionChannels(conv1x1=128, reduce3x3=64, conv3x3=192, reduce5x5=64, conv5x5=96,
                          pool_proj=64)
reduced = summary(Inception(256, slide), (256, 28, 28))
for row in reduced.layers:
    if row.type == "Conv2d":
        print(f"{row.name:<16} {row.kernel[0]}x{row.kernel[1]} -> "
              f"{'x'.join(map(str, row.output_shape[1:])):>10}  {format_count(row.macs):>6} MACs")
check("358M operations with bottlenecks", f"{reduced.totals.macs:,} MACs",
      round(reduced.totals.macs, -6) == 358e6,
      "the slide's own six layers add up to 271M; its total is an arithmetic slip")
print(f"the bottlenecks cut the cost {naive.totals.macs / reduced.totals.macs:.1f}x "
      f"(output depth {naive.layers[-1].output_shape[1]} -> {reduced.layers[-1].output_shape[1]})")
'''
        ),
        Text(
            "**Parameters against AlexNet.** The lecture says GoogLeNet has 5 million parameters, "
            "12 times fewer than AlexNet, having dropped the large fully connected layers. "
            "cnnzoo's `googlenet` is the paper's network with its two auxiliary heads, which "
            "exist only for training; `googlenet_tv` is torchvision's form (batch norm, no LRN)."
        ),
        Python(
            '''
from cnnzoo import get_spec

alexnet = get_spec("alexnet").num_params
paper = cnnzoo.summary("googlenet")
aux = paper.totals.unused_params  # the auxiliary heads: they do not run at test time
main = paper.totals.params - aux
check("about 5M parameters, 12x fewer than AlexNet",
      f"{main:,} without the auxiliary heads ({alexnet / main:.1f}x fewer than AlexNet's "
      f"{alexnet:,}); {paper.totals.params:,} with them",
      abs(alexnet / main - 12) < 1,
      f"the paper's network has {main / 1e6:.1f}M parameters, so the ratio is "
      f"{alexnet / main:.0f}x, not 12x")
'''
        ),
        Text(
            "**The auxiliary classifiers.** Two small heads (average pool, 1x1 conv, two fully "
            "connected layers) on inception 4a and 4d add their losses during training, to "
            "inject gradient into the middle of the network; at test time they are dropped. "
            "Their cost, and the weight training gives their losses:"
        ),
        Python(
            '''
training = cnnzoo.summary("googlenet", mode="train")
for head in ("aux1", "aux2"):
    rows = [r for r in training.all_layers if r.name.startswith(head + ".")]
    print(f"{head}: {sum(r.params for r in rows):,} params, "
          f"{format_count(sum(r.macs for r in rows))} MACs per image")
print(f"the whole network in training: {format_count(training.totals.macs)} MACs, at test time "
      f"{format_count(paper.totals.macs)}")
print(f"loss = main + {get_spec('googlenet').aux_loss_weight} x (aux1 + aux2) in training")
'''
        ),
    ),
)

RESNET = Section(
    "ResNet",
    (
        Text(
            "**The degradation problem.** A plain 56-layer network has higher *training* error "
            "than a plain 20-layer one, so it is not overfitting. The lecture's argument: copy "
            "the shallow network's layers into the deep one and make every extra layer an "
            "identity; the deep network then computes exactly what the shallow one does, so a "
            "solution at least as good exists, and the trouble is that SGD does not find it."
        ),
        Text(
            "The argument is a construction, so it can be run. `deepen_plain` copies plain-20's "
            "layers into the matching positions of plain-56's stages and makes every extra "
            "conv-BN-ReLU an identity: a Dirac kernel, batch norm with weight 1, bias 0, running "
            "mean 0 and running variance 1 - eps, and a ReLU that passes the non-negative "
            "activations it receives. Then it checks that the two networks' logits agree. Here "
            "on a randomly initialized plain-20 whose batch norms have seen some data:"
        ),
        Python(
            '''
import torch

from cnnzoo.train.construction import deepen_plain, verify_construction

torch.manual_seed(0)
plain20 = cnnzoo.create_model("plain20_cifar")
with torch.no_grad():  # batch-norm statistics other than the defaults
    plain20.train()
    for _ in range(3):
        plain20(torch.randn(16, 3, 32, 32))
plain56 = deepen_plain(plain20)
images = [torch.randn(8, 3, 32, 32) for _ in range(2)]
difference = verify_construction(plain20, plain56, images)
count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
print(f"plain-20: {count(plain20):,} parameters; constructed plain-56: {count(plain56):,}")
print(f"largest logit difference on 16 images within 1e-5: {difference <= 1e-5}")
'''
        ),
        Text(
            "So a 56-layer network exactly as good as plain-20 exists. Does SGD find one from "
            "scratch? `cnnzoo experiment degradation` (the paper's Fig. 6) trains plain-20, "
            "plain-56, ResNet-20 and ResNet-56 on the embedded digits with three seeds each, and "
            "`cnnzoo experiment construction` builds plain-56 from each trained plain-20. That "
            "takes about 40 minutes on two cores, so this cell reads their published records "
            "(`docs/reproductions/`, the same files [reproductions.md](reproductions.md) is "
            "generated from) instead of training again:"
        ),
        Python(
            '''
from cnnzoo.train.experiments import results_table
from cnnzoo.train.reproductions import load_record

for name in ("degradation", "construction"):
    record = load_record(f"reproductions/{name}.json")
    setup = record["setup"]
    print(f"{name}: {setup['epochs']} epochs, batch {setup['batch_size']}, lr {setup['lr']:g}, "
          f"seeds {setup['seeds']}; errors as mean ± std [min, max]")
    print(results_table(record))
    for claim in record["claims"]:
        print(f"- {claim['outcome']}: {claim['text']}")
    print()
'''
        ),
        Text("![Training error per epoch, mean and min-max band over three seeds]"
             "(reproductions/degradation.png)"),
        Text(
            "**A residual block** learns F(x) and outputs F(x) + x: to be the identity it only "
            "has to drive F to zero. Two 3x3 convolutions, batch norm after each, the add, then "
            "the ReLU:"
        ),
        Shell("cnnzoo summary resnet20_cifar --depth 3 | head -16"),
        Text(
            "**The bottleneck.** From ResNet-50 on, a block on a 28x28x256 input first projects "
            "to 64 channels with a 1x1 convolution, runs the 3x3 on 64 channels, and expands "
            "back to 256 with another 1x1. Against two 3x3 convolutions on the full 256 "
            "channels:"
        ),
        Python(
            '''
basic = summary(nn.Sequential(nn.Conv2d(256, 256, 3, padding=1, bias=False),
                              nn.Conv2d(256, 256, 3, padding=1, bias=False)), (256, 28, 28))
bottleneck = summary(nn.Sequential(nn.Conv2d(256, 64, 1, bias=False),
                                   nn.Conv2d(64, 64, 3, padding=1, bias=False),
                                   nn.Conv2d(64, 256, 1, bias=False)), (256, 28, 28))
for name, r in (("two 3x3 on 256", basic), ("1x1-3x3-1x1 bottleneck", bottleneck)):
    print(f"{name:<24} {r.totals.params:>9,} params  {format_count(r.totals.macs):>6} MACs")
print(f"the bottleneck costs {basic.totals.macs / bottleneck.totals.macs:.1f}x less")
'''
        ),
        Text(
            "**The training recipe.** Batch norm after every convolution, He initialization, "
            "SGD with momentum 0.9, weight decay 1e-4, no dropout, the learning rate divided by "
            "10 when the error plateaus; batch 256 on ImageNet. cnnzoo's recipes carry these "
            "with their source:"
        ),
        Python(
            '''
from cnnzoo.train.recipes import get_recipe

for name in ("resnet-imagenet", "resnet-cifar"):
    recipe = get_recipe(name)
    keys = ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "schedule", "epochs")
    print(f"{name} [{recipe.citation}]")
    print("  " + ", ".join(f"{k}={recipe.settings[k]}" for k in keys if k in recipe.settings))
'''
        ),
    ),
)

COMPARISON = Section(
    "Comparing the networks",
    (
        Text(
            "Canziani et al. (2016, arXiv 1605.07678) plotted accuracy against operations with the "
            "bubble size showing parameters. `cnnzoo compare` puts the same quantities side by "
            "side; the accuracy column is the *published* figure with its protocol (single or "
            "ten crops, top-1 or top-5), since no network here is trained on ImageNet."
        ),
        Shell(
            "cnnzoo compare alexnet vgg16 googlenet resnet50 --format markdown "
            "--out lecture_files"
        ),
        Text(
            "![Top-1 accuracy against MACs, bubble area showing parameters]"
            "(lecture_files/accuracy_vs_macs.png)\n\n"
            "![Top-5 accuracy against MACs, GoogLeNet included]"
            "(lecture_files/accuracy_top5_vs_macs.png)"
        ),
        Text(
            "**How fast are they?** Measured, not estimated: `benchmarks/inference.py` times "
            "each network against torchvision, `torch.compile` and onnxruntime in one run on an "
            "otherwise idle machine and commits the results (BENCHMARKS.md has every case). "
            "This cell reads them, one block per machine it ran on:"
        ),
        Python(
            '''
import csv
from pathlib import Path

for path in sorted(Path("../benchmarks/results").glob("inference-*.csv")):
    rows = [r for r in csv.DictReader(path.read_text().splitlines()) if r["batch_size"] == "16"]
    first = rows[0]
    print(f"{first['cpu']} ({first['cpu_flags']}), {first['date'][:10]}: batch 16, images/s")
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        speed = lambda r: float(r["images_per_s"])  # noqa: E731
        fp32 = max((r for r in mine if r["precision"] == "fp32"), key=speed)
        eager = next(r for r in mine if r["label"] in ("torchvision", "cnnzoo eager"))
        busy = "" if mine[0]["load_counts"] == "True" else "  (busy machine: does not count)"
        print(f"  {model:<14} eager fp32 {float(eager['images_per_s']):6.1f}, fastest fp32 "
              f"{float(fp32['images_per_s']):6.1f} ({fp32['label']}){busy}")
'''
        ),
        Text(
            "Read against the lecture's reading of the chart: VGG-16 has the most operations and "
            "parameters of the group for an accuracy that ResNet passes with far fewer; "
            "GoogLeNet is the cheapest of the accurate networks in both operations and "
            "parameters; AlexNet is cheap in operations but not in parameters, and the least "
            "accurate; ResNet sits in the middle on cost with the best accuracy."
        ),
    ),
)

NIN = Section(
    "Network in Network",
    (
        Text(
            "NiN replaces each convolution with a small multilayer perceptron slid over the "
            "image: a convolution followed by two 1x1 convolutions (the \"mlpconv\" layer), "
            "and ends with global average pooling instead of fully connected layers. Its 1x1 "
            "convolutions came before GoogLeNet's bottlenecks."
        ),
        Shell("cnnzoo summary nin_cifar --depth 2 | head -14"),
    ),
)

PREACT = Section(
    "Identity mappings (pre-activation ResNet)",
    (
        Text(
            "He et al.'s follow-up moves batch norm and ReLU in front of each convolution, so the "
            "shortcut path from one block to the next carries x unchanged: no ReLU after the "
            "add. Check it on cnnzoo's blocks: in the original block the add is followed by a "
            "ReLU, in the pre-activation block nothing follows it."
        ),
        Python(
            '''
from cnnzoo.analysis import meta_model

for name in ("resnet110_cifar", "preact_resnet110_cifar"):
    block = meta_model(name).layer2[1]
    children = [n for n, _ in block.named_children()]
    after = children[children.index("add") + 1:]
    print(f"{name}: block {children}, after the add: {after or 'nothing'}")
'''
        ),
    ),
)

WIDE = Section(
    "Wide ResNet",
    (
        Text(
            "Zagoruyko and Komodakis argue that the residual connection matters more than depth: "
            "multiply each block's filters by k and a 28-layer network beats far deeper thin "
            "ones. Width also suits the hardware: each layer does more work per launch, so more "
            "of it runs in parallel."
        ),
        Shell("cnnzoo compare resnet110_cifar wrn28_10_cifar wrn16_8_cifar --format markdown"),
        Python(
            '''
for name in ("resnet110_cifar", "wrn28_10_cifar"):
    r = cnnzoo.summary(name)
    convs = [row for row in r.all_layers if row.type == "Conv2d"]
    print(f"{name:<16} {len(convs):>3} convs, {format_count(r.totals.macs / len(convs))} MACs per "
          f"conv on average")
'''
        ),
        Text(
            "The measured side of the claim: `cnnzoo profile` times every layer (and the whole "
            "network) and divides the analyzer's FLOPs by the time. `benchmarks/layer_profile.py` "
            "ran it on both networks at batch 64 on an idle machine and committed the results; "
            "this cell reads them:"
        ),
        Python(
            '''
import csv
import statistics
from pathlib import Path

for name in ("resnet110_cifar", "wrn28_10_cifar"):
    path = Path(f"../benchmarks/results/profile/{name}_profile.csv")
    rows = list(csv.DictReader(path.read_text().splitlines()))
    whole_s = float(rows[0]["whole_median_ms"]) / 1e3
    rate = sum(int(r["flops"]) for r in rows) / whole_s / 1e9
    convs = [float(r["gflops_per_s"]) for r in rows if r["type"] == "Conv2d"]
    print(f"{name:<16} batch {rows[0]['batch_size']}: {rate:6.1f} GFLOP/s over the whole "
          f"network, {statistics.median(convs):6.1f} per conv (median), "
          f"{float(rows[0]['gemm_gflops']):.0f} the GEMM ceiling")
print(f"measured on {rows[0]['cpu']}, {rows[0]['threads']} threads, torch {rows[0]['torch']}")
'''
        ),
    ),
)

RESNEXT = Section(
    "ResNeXt",
    (
        Text(
            "ResNeXt splits the bottleneck's 3x3 convolution into many parallel thin paths, its "
            "cardinality: 32 paths of 4 channels. These are one grouped convolution (groups=32). "
            "At about the same cost as ResNet-50's block (its second, reading 256 channels), "
            "the block gets twice the width, and so does the whole network:"
        ),
        Python(
            '''
for name in ("resnet50", "resnext50_32x4d"):
    r = cnnzoo.summary(name)
    rows = [row for row in r.all_layers if row.name.startswith("layer1.1.conv")]
    widths = " -> ".join(str(row.output_shape[1]) for row in rows)
    print(f"{name:<16} conv widths {widths:<16} groups of the 3x3: {rows[1].groups:>2}  "
          f"{sum(row.params for row in rows):,} params  "
          f"{format_count(sum(row.macs for row in rows))} MACs")
    print(f"{'':<16} whole network: {r.totals.params:,} params, "
          f"{format_count(r.totals.macs)} MACs")
'''
        ),
    ),
)

STOCHASTIC = Section(
    "Stochastic depth",
    (
        Text(
            "Huang et al. drop whole residual branches at random during training (the block "
            "becomes the identity), with a drop probability growing linearly with depth to 0.5 "
            "at the last block; at test time every block runs, its branch scaled by its "
            "survival probability. A short network in expectation while training, the full "
            "deep one at test time:"
        ),
        Python(
            '''
import torch

from cnnzoo.layers.drop_path import DropPath

torch.manual_seed(0)
model = cnnzoo.create_model("resnet110_sd_cifar")
paths = [m for m in model.modules() if isinstance(m, DropPath)]
print(f"{len(paths)} droppable blocks, drop probability {paths[0].drop_prob:.3f} to "
      f"{paths[-1].drop_prob:.3f}")
x = torch.randn(2, 3, 32, 32)
model.train()
kept = []
hooks = [p.register_forward_hook(lambda m, i, o: kept.append(bool(o.abs().sum() > 0)))
         for p in paths]
with torch.no_grad():
    model(x)
print(f"training forward: {sum(kept)} of {len(paths)} blocks ran")
for h in hooks:
    h.remove()
model.eval()
with torch.no_grad():
    same = torch.equal(model(x), model(x))
print(f"test time: every block runs, scaled; two forwards agree exactly: {same}")
'''
        ),
    ),
)

FRACTAL = Section(
    "FractalNet",
    (
        Text(
            "FractalNet has no residual connections: each block is a fractal of shallow and deep "
            "paths joined by averaging. During training, drop-path removes paths at random "
            "(locally at each join, or globally keeping a single column); at test time all "
            "paths run."
        ),
        Python(
            '''
torch.manual_seed(0)
fractal = cnnzoo.create_model("fractalnet20_cifar")
x = torch.randn(2, 3, 32, 32)
with torch.no_grad():
    fractal.train()
    a, b = fractal(x), fractal(x)
    fractal.eval()
    c, d = fractal(x), fractal(x)
print(f"training: two forwards differ (paths dropped at random): {not torch.equal(a, b)}")
print(f"test: two forwards agree exactly (every path runs): {torch.equal(c, d)}")
'''
        ),
    ),
)

DENSENET = Section(
    "DenseNet",
    (
        Text(
            "In a dense block every layer reads the concatenation of all earlier outputs and adds "
            "k new channels (the growth rate), so the depth grows linearly through the block; "
            "a 1x1 bottleneck inside each layer and the transitions between blocks keep it "
            "affordable. DenseNet-121's first block, k = 32:"
        ),
        Python(
            '''
dense = cnnzoo.summary("densenet121")
rows = [r for r in dense.all_layers if r.name.startswith("features.denseblock1.denselayer")
        and r.name.endswith(".conv2")]
print("each layer adds:", sorted({r.output_shape[1] for r in rows}), "channels")
reads = [r.input_shapes[0][1] for r in dense.all_layers
         if r.name.startswith("features.denseblock1.denselayer") and r.name.endswith(".norm1")]
print("channels each layer reads:", reads)
block = next(r for r in dense.all_layers if r.name == "features.denseblock1.concat")
print("block output:", block.output_shape[1], "= 64 + 6 x 32")
'''
        ),
    ),
)

SQUEEZENET = Section(
    "SqueezeNet",
    (
        Text(
            "SqueezeNet's fire module squeezes with 1x1 convolutions, then expands with 1x1 and "
            "3x3 convolutions side by side and concatenates them. The lecture says it matches "
            "AlexNet's accuracy with 50 times fewer parameters."
        ),
        Shell("cnnzoo summary squeezenet1_0 --depth 2 | head -9"),
        Python(
            '''
fire = [r for r in cnnzoo.summary("squeezenet1_0").all_layers
        if r.name.startswith("features.3.") and r.type == "Conv2d"]
for r in fire:
    print(f"{r.name:<22} {r.kernel[0]}x{r.kernel[1]} -> {r.output_shape[1]:>3} channels "
          f"{r.params:>6,} params")
squeeze = get_spec("squeezenet1_0").num_params
check("50x fewer parameters than AlexNet",
      f"{alexnet:,} / {squeeze:,} = {alexnet / squeeze:.1f}x",
      abs(alexnet / squeeze - 50) < 2.5)
'''
        ),
    ),
)

SECTIONS = (
    LENET,
    ALEXNET,
    ZFNET,
    VGG,
    GOOGLENET,
    RESNET,
    COMPARISON,
    NIN,
    PREACT,
    WIDE,
    RESNEXT,
    STOCHASTIC,
    FRACTAL,
    DENSENET,
    SQUEEZENET,
)
