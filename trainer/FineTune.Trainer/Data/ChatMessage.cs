namespace FineTune.Trainer.Data;

/// <summary>One turn of a conversation; Role is "system", "user" or "assistant" (ShareGPT roles are mapped).</summary>
public sealed record ChatMessage(string Role, string Content);
