namespace FineTune.Trainer.Data;

/// <summary>The chat formats FineTune can write (see <see cref="ChatFormatter"/> for the exact text).</summary>
public enum ChatTemplateKind
{
    /// <summary>ChatML (Qwen2, many others): "&lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n". The default.</summary>
    ChatMl,

    /// <summary>Llama 3: BOS, then "&lt;|start_header_id|&gt;{role}&lt;|end_header_id|&gt;\n\n{content}&lt;|eot_id|&gt;".</summary>
    Llama3,
}
