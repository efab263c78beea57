"""Creates the six categories of the sample issue and the default arXiv feed."""

from __future__ import annotations

from django.db import migrations

CATEGORIES = [
    {
        "slug": "nlp",
        "name": "Natural Language Processing",
        "colour": "#4C72B0",
        "description": (
            "Language understanding and generation that is not mainly about large language "
            "models themselves: translation, speech, dialogue, information extraction, "
            "multilingual and low-resource languages, linguistic analysis, text datasets."
        ),
        "arxiv_categories": ["cs.CL"],
        "keywords": [
            "natural language", "translation", "speech", "dialogue", "text classification",
            "named entity", "sentiment", "linguistic", "multilingual", "low-resource language",
            "corpus", "tokeniz", "question answering", "summarization",
        ],
    },
    {
        "slug": "computer-vision",
        "name": "Computer Vision",
        "colour": "#55A868",
        "description": (
            "Images, video and 3D from pixels: detection, segmentation, tracking, image and "
            "video generation or editing, depth, pose, scene reconstruction, medical imaging."
        ),
        "arxiv_categories": ["cs.CV", "eess.IV"],
        "keywords": [
            "image", "video", "segmentation", "object detection", "pixel", "3d", "point cloud",
            "diffusion model", "gaussian splatting", "depth estimation", "optical flow",
            "visual recognition", "camera",
        ],
    },
    {
        "slug": "training",
        "name": "Model training technique",
        "colour": "#C44E52",
        "description": (
            "How models are trained and made efficient, across domains: optimisers, "
            "regularisation, quantisation, pruning, distillation, federated and continual "
            "learning, data curation, scaling laws, theory of learning."
        ),
        "arxiv_categories": ["cs.LG", "stat.ML", "math.OC"],
        "keywords": [
            "optimizer", "optimization", "gradient", "quantiz", "pruning", "distillation",
            "federated", "continual learning", "fine-tuning", "regularization", "scaling law",
            "convergence", "training", "low-rank", "lora", "generalization",
        ],
    },
    {
        "slug": "llm",
        "name": "LLM",
        "colour": "#8172B2",
        "description": (
            "Large language models themselves: their reasoning, prompting, agents built on "
            "them, alignment, safety, evaluation and benchmarks of LLMs, retrieval-augmented "
            "generation, inference and serving of LLMs, code generation with LLMs."
        ),
        "arxiv_categories": [],
        "keywords": [
            "large language model", "llm", "gpt", "chain-of-thought", "prompt", "in-context",
            "instruction tuning", "rlhf", "retrieval-augmented", "rag", "jailbreak",
            "hallucination", "reasoning model", "language agent", "tool use",
        ],
    },
    {
        "slug": "reinforcement-learning",
        "name": "Reinforcement Learning",
        "colour": "#CCB974",
        "description": (
            "Learning from reward and interaction: reinforcement learning algorithms, policies, "
            "bandits, planning, multi-agent systems, robotics and control."
        ),
        "arxiv_categories": ["cs.RO", "cs.MA", "eess.SY", "cs.GT"],
        "keywords": [
            "reinforcement learning", "policy", "reward", "bandit", "markov decision",
            "q-learning", "robot", "multi-agent", "control", "planning", "offline rl",
            "grasp", "dexterous", "manipulation", "locomotion", "world model",
        ],
    },
    {
        "slug": "multimodal",
        "name": "Multimodal",
        "colour": "#64B5CD",
        "description": (
            "Models that join several modalities: vision-language models, text-to-image and "
            "text-to-video, audio-visual learning, image captioning, visual question answering, "
            "embodied models that see and speak."
        ),
        "arxiv_categories": ["cs.MM"],
        "keywords": [
            "multimodal", "multi-modal", "vision-language", "vision language", "text-to-image",
            "text-to-video", "image-text", "audio-visual", "vlm", "mllm", "captioning",
            "visual question answering", "video-language", "caption", "visual instruction",
            "audio-language", "speech-text", "image-to-text",
        ],
    },
]

DEFAULT_FEED = "https://rss.arxiv.org/rss/cs.AI+cs.CL+cs.CV+cs.LG+cs.RO+cs.MA+stat.ML"


def create_defaults(apps, schema_editor):
    Category = apps.get_model("digests", "Category")
    Feed = apps.get_model("digests", "Feed")
    for position, data in enumerate(CATEGORIES):
        Category.objects.update_or_create(
            slug=data["slug"], defaults={**data, "position": position, "active": True}
        )
    Feed.objects.get_or_create(
        url=DEFAULT_FEED, defaults={"name": "arXiv AI (cs.AI, CL, CV, LG, RO, MA, stat.ML)"}
    )


def remove_defaults(apps, schema_editor):
    apps.get_model("digests", "Category").objects.filter(
        slug__in=[c["slug"] for c in CATEGORIES]
    ).delete()
    apps.get_model("digests", "Feed").objects.filter(url=DEFAULT_FEED).delete()


class Migration(migrations.Migration):
    dependencies = [("digests", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, remove_defaults)]
